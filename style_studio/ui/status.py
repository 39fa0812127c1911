"""The job status line: polled, so a reload or a second tab sees the running job."""

from __future__ import annotations

from style_studio.studio import Studio


def status_text(studio: Studio) -> str:
    job = studio.jobs.current()
    if job is None:
        return "**Device idle** — no job running."
    waiting = len([j for j in studio.jobs.list(limit=20) if j.status == "queued"])
    queue = f" · {waiting} waiting" if waiting > (job.status == "queued") else ""
    state = "Running" if job.status == "running" else "Waiting"
    return f"**{state}:** {job.summary()}{queue}"
