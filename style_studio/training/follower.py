"""The other processes of a multi-process launch: train the main process's run with it.

They never open the workspace's store or take its lock (the main process holds both):
the main process creates the run through the Training service as a single process
would, then hands over the run's `TrainSpec`; each other process trains its share of
every batch and writes nothing.
"""

from __future__ import annotations

import os
from typing import Any

from style_studio.base.errors import JobCancelled

from .distributed import Processes
from .trainer import Outcome, Trainer, TrainingDiverged


class _Silent:
    """A job context for a process that reports nowhere: the main process reports, and
    only the main process decides to stop (it tells the others at each step)."""

    cancel_requested = False

    def progress(self, fraction: float, message: str = "", **extra: Any) -> None:
        pass

    def log(self, line: str) -> None:
        pass


def follow_training(processes: Processes) -> Outcome | None:
    """Wait for the main process's run and train it alongside. None when the main process
    had no run to train (its command failed first), or stopped it (Cancel, or a loss that
    every process saw diverge): the main process says why, and this one must end without
    an error, or the launcher would stop the main process before it has recorded that.
    Any other error is this process's alone: it propagates, and the launcher stops the
    others (the run then reads "interrupted" and resumes from its last checkpoint)."""
    spec = processes.receive()
    if spec is None:
        return None
    threads = int(os.environ.get("STYLE_STUDIO_TORCH_THREADS", "0") or 0)
    if threads:
        import torch

        torch.set_num_threads(threads)
    trainer = Trainer(spec, _Silent(), processes)
    try:
        trainer.prepare()
        return trainer.run()
    except (JobCancelled, TrainingDiverged):
        return None
    finally:
        trainer.release()
