"""One device shared by many job runners: first come, first served, with a bounded line.

On a public demo each visitor has a studio, and each studio a job runner of its own; the
runners take turns on the one device through this object, so two visitors' trainings
never run at once, a waiting job knows its place in line, and when the line is full a new
job is refused at once with a clear message instead of waiting for hours.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import StudioError


class DeviceBusy(StudioError):
    """The shared device's waiting line is full."""


class DeviceTurns:
    """A FIFO line in front of one device; `capacity` jobs may wait at most."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._cond = threading.Condition()
        self._line: list[str] = []
        self._holder: str | None = None

    def join(self, job_id: str) -> int:
        """Take a place in line (1 = next); raises DeviceBusy when the line is full."""
        with self._cond:
            if len(self._line) >= self.capacity:
                raise DeviceBusy(
                    f"The demo is busy: {len(self._line)} jobs are already waiting for the "
                    "device. Nothing was queued; try again in a few minutes.")
            self._line.append(job_id)
            return len(self._line)

    def place(self, job_id: str) -> int | None:
        """1-based place in line, or None when the job is not waiting."""
        with self._cond:
            return self._line.index(job_id) + 1 if job_id in self._line else None

    def wait(self, job_id: str, still_wanted: Callable[[], bool], poll_s: float = 0.5) -> bool:
        """Block until it is this job's turn (True) or it is no longer wanted (False)."""
        with self._cond:
            while True:
                if not still_wanted():
                    self._leave_locked(job_id)
                    return False
                if self._holder is None and self._line and self._line[0] == job_id:
                    self._line.pop(0)
                    self._holder = job_id
                    return True
                self._cond.wait(poll_s)

    def release(self, job_id: str) -> None:
        """The job finished (or never started): the next in line may go."""
        with self._cond:
            self._leave_locked(job_id)

    def _leave_locked(self, job_id: str) -> None:
        if self._holder == job_id:
            self._holder = None
        if job_id in self._line:
            self._line.remove(job_id)
        self._cond.notify_all()
