"""Sizes and durations in words a person reads: "0.0 MB" says nothing about a 40 KB file,
and "5400 s" nothing about an hour and a half."""

from __future__ import annotations

UNITS = ("KB", "MB", "GB", "TB")
STEP = 1024  # the same MB as the import limits (image_checks.MB)


def human_size(size: float) -> str:
    """'812 bytes', '40 KB', '3.2 MB', '1.4 GB': two significant figures at least."""
    value = float(max(0, size))
    if value < STEP:
        count = int(value)
        return f"{count} byte{'s' * (count != 1)}"
    index = 0
    value /= STEP
    while value >= STEP and index < len(UNITS) - 1:
        value /= STEP
        index += 1
    unit = UNITS[index]
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


def format_duration(seconds: float | None) -> str:
    """'45 s', '12 min', '2.5 h': what an artist reads in an ETA."""
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"
