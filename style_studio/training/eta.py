"""Time left in a training run, from the wall time of its recent steps.

Why a moving window of wall time: an average over the whole run reacts late when steps
slow down (a busy machine, a thermal limit, a larger bucket), and timing only the training
steps leaves out the pauses for samples and checkpoints, so the estimate stays low. The
wall time between ticks counts everything that happened between two steps.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

DEFAULT_WINDOW = 50  # steps


class StepClock:
    """Call `tick(step)` after each step (and once before the first); `eta(n)` is then
    the seconds that `n` more steps take at the pace of the last `window` steps."""

    def __init__(self, window: int = DEFAULT_WINDOW,
                 clock: Callable[[], float] = time.monotonic):
        if window < 1:
            raise ValueError("the window must hold at least one step")
        self.window = window
        self._clock = clock
        self._ticks: deque[tuple[int, float]] = deque()

    def tick(self, step: int, now: float | None = None) -> None:
        """Record that `step` steps are done at `now` (the clock's time by default)."""
        at = self._clock() if now is None else now
        if self._ticks and step <= self._ticks[-1][0]:
            self._ticks.clear()  # the count went back (a resume): start measuring afresh
        self._ticks.append((step, at))
        while len(self._ticks) > 1 and step - self._ticks[1][0] >= self.window:
            self._ticks.popleft()

    def seconds_per_step(self) -> float | None:
        """Wall time per step over the window, pauses included; None before two ticks."""
        if len(self._ticks) < 2:
            return None
        (first_step, first_at), (last_step, last_at) = self._ticks[0], self._ticks[-1]
        return max(0.0, last_at - first_at) / (last_step - first_step)

    def eta(self, remaining_steps: int) -> float | None:
        """Seconds left for `remaining_steps`; None until there is a pace to go by."""
        pace = self.seconds_per_step()
        if pace is None:
            return None
        return max(0, remaining_steps) * pace


def window_for(*every: int) -> int:
    """A window long enough to hold each periodic pause (samples every N steps,
    checkpoints every M) at least once, so the estimate does not swing after each one."""
    return max([DEFAULT_WINDOW, *(n for n in every if n and n > 0)])
