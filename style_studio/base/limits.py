"""What a stranger may do on a public demo (a Hugging Face Space): the limits of Space mode.

An artist's own install has no such limits (`Studio` gets None). On a public demo every
visitor gets a workspace of their own, and these bounds keep one visitor from filling the
disk, the queue or the CPU for everyone else. The services check them, so a call through
Gradio's API meets the same refusals as the page.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInput

MB = 1024 * 1024


class LimitReached(InvalidInput):
    """A demo limit was reached; the message says which and what to do."""


@dataclass(frozen=True)
class DemoLimits:
    """Per-visitor quotas and what the demo trains. Defaults fit a free CPU Space."""

    max_styles: int = 3
    max_images: int = 40             # per visitor, over all their styles
    max_bytes: int = 100 * MB        # stored image bytes per visitor
    max_active_jobs: int = 2         # a visitor's queued or running device jobs
    queue_capacity: int = 6          # device jobs waiting, all visitors together
    max_steps: int = 400
    max_resolution: int = 256
    job_time_limit_s: float = 15 * 60
    idle_expiry_s: float = 2 * 3600  # a visitor's workspace is deleted after this idle time
    max_visitors: int = 300          # workspaces at once: a script cannot fill the disk
    idle_close_s: float = 15 * 60    # a quiet visitor's studio is closed (files stay)
    max_batch: int = 4
    max_rank: int = 32
    max_generate_side: int = 512
    max_generate_steps: int = 30

    def describe(self) -> str:
        """One sentence for the banner: the limits in words."""
        return (f"up to {self.max_styles} styles, {self.max_images} images "
                f"({self.max_bytes // MB} MB) and {self.max_active_jobs} waiting jobs per "
                f"visitor; training on the built-in toy model only, at most "
                f"{self.max_steps} steps at {self.max_resolution} px (the Quick draft), "
                f"{int(self.job_time_limit_s // 60)} minutes per job; everything is deleted "
                f"after {self.idle_expiry_s / 3600:g} hours without a visit")
