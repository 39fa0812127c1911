"""The Verify tab: drop any image or LoRA and read what its Content Credentials prove.

The studio checks the file against this workspace (its root certificate, the erasure
journal, revoked consents, the LoRAs of its runs) and answers in plain lines
(`Studio.verify`); this tab only shows them.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from style_studio.studio import StudioError

from .common import Tab, escape_md, guard, upload_file

INTRO = ("### 6 · Verify\nDrop an image (a Playground output, or any picture a client sends "
         "you) or a LoRA file (`.safetensors`, with its `.c2pa` if you have it). You see "
         "whether it carries Content Credentials, whether the signature is intact and whose "
         "it is, the run and LoRA behind it, what it was trained on, and whether any of "
         "those images has since been erased or had its consent withdrawn. Nothing is "
         "uploaded anywhere: the check runs on this computer.")
WAITING = "*Drop a file above to check it.*"


def result_markdown(lines: list[str]) -> str:
    """The headline in bold with a mark for its verdict, then the details as a list."""
    if not lines:
        return WAITING
    head = lines[0]
    mark = ("✓" if head.startswith("Content Credentials intact and trusted")
            else "○" if head.startswith("No ") else "✗" if "broken" in head else "⚠")
    body = [f"- {escape_md(line)}" for line in lines[1:]]
    return "\n".join([f"#### {mark} {escape_md(head)}", "", *body])


class VerifyTab(Tab):
    """Drop a file, read the verdict."""

    def _layout(self) -> None:
        gr.Markdown(INTRO)
        self.upload = upload_file(label="Image or LoRA to verify", type="filepath",
                                  file_count="multiple", elem_id="verify-file", height=140)
        self.result = gr.Markdown(WAITING, elem_id="verify-result")

    def _wire(self) -> None:
        self.upload.upload(guard(self.check), [self.upload], [self.result])
        self.upload.clear(lambda: WAITING, None, [self.result])

    def check(self, files: list[str] | str | None) -> Any:
        """Verify the dropped file(s); a refusal (a text file, a broken image, a file too
        large) is shown in the result, in words, like any other answer."""
        paths = [files] if isinstance(files, str) else list(files or [])
        if not paths:
            return WAITING
        try:
            return result_markdown(self.studio.verify(paths))
        except StudioError as exc:
            return f"#### ✗ This file cannot be checked\n\n{escape_md(exc)}"
        finally:
            self.studio.discard_uploads(paths)
