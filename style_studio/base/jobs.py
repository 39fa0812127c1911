"""The job runner: one worker thread owns the device and runs one job at a time.

Work that never touches the device (importing files) runs on a second lane with its
own worker, so an artist can keep curating while a long training holds the device.

Jobs are persisted so that a page reload, a second tab or a restart can see them;
a job that was running when the process died is marked `interrupted` at the next
start. Cancellation is cooperative: the job checks `ctx.check_cancelled()` between
steps.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .errors import JobCancelled, StudioError
from .limits import LimitReached
from .store import Store, known_fields, new_id, utc_now
from .turns import DeviceTurns

JobStatus = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]
ACTIVE: tuple[str, ...] = ("queued", "running")
FINISHED: tuple[str, ...] = ("done", "failed", "cancelled", "interrupted")
DEVICE_LANE, FILES_LANE = "device", "files"
LANES = (DEVICE_LANE, FILES_LANE)


@dataclass
class Job:
    id: str
    kind: str
    title: str = ""
    status: JobStatus = "queued"
    progress: float = 0.0
    message: str = ""
    log: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str | None = None
    style_id: str | None = None
    lane: str = DEVICE_LANE
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Job:
        return cls(**known_fields(cls, doc))

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def summary(self) -> str:
        """One line for the status bar."""
        pct = f" {self.progress:.0%}" if self.status == "running" else ""
        text = self.error if self.status == "failed" else self.message
        return f"{self.title or self.kind}: {self.status}{pct}" + (f" — {text}" if text else "")


JobFn = Callable[["JobContext"], dict[str, Any] | None]


class JobContext:
    """What a running job may do: report progress, log, and check for cancellation."""

    def __init__(self, runner: JobRunner, job_id: str):
        self._runner = runner
        self.job_id = job_id

    def progress(self, fraction: float, message: str = "", **extra: Any) -> None:
        self._runner._report(self.job_id, fraction=fraction, message=message, extra=extra)

    def log(self, line: str) -> None:
        self._runner._report(self.job_id, log_line=line)

    @property
    def over_time(self) -> bool:
        """Past the runner's time limit (a public demo's), if it has one."""
        limit = self._runner.time_limit_s
        return bool(limit) and self._runner._running_for(self.job_id) > limit

    @property
    def cancel_requested(self) -> bool:
        """The artist asked to stop, or the job ran past its time limit: stop at the next
        step either way (the trainer saves a checkpoint first)."""
        return self._runner._cancel_requested(self.job_id) or self.over_time

    @property
    def stop_reason(self) -> str:
        limit = self._runner.time_limit_s or 0
        if self.over_time:
            return (f"Stopped after {limit / 60:g} minutes: the time limit of a job on this "
                    "demo. What it finished is kept.")
        return "Cancelled by the artist."

    def check_cancelled(self) -> None:
        if self.cancel_requested:
            raise JobCancelled(self.stop_reason)


class JobRunner:
    """Queue of jobs served by a single worker thread.

    On a public demo the runners of all visitors share `turns` (one device, one line),
    `max_active` bounds a visitor's own queued or running device jobs and `time_limit_s`
    stops a job that runs longer; an artist's own install has none of these.
    """

    def __init__(self, store: Store, log_tail: int = 200, persist_every_s: float = 0.5,
                 turns: DeviceTurns | None = None, max_active: int | None = None,
                 time_limit_s: float | None = None):
        self.store = store
        self.turns = turns
        self.max_active = max_active
        self.time_limit_s = time_limit_s
        self._started: dict[str, float] = {}
        self.log_tail = log_tail
        self.persist_every_s = persist_every_s
        self._lock = threading.Lock()
        self._live: dict[str, Job] = {}
        self._fns: dict[str, JobFn] = {}
        self._cancel: set[str] = set()
        self._last_persist: dict[str, float] = {}
        self._queues: dict[str, queue.Queue[str | None]] = {lane: queue.Queue() for lane in LANES}
        self._done = threading.Condition(self._lock)
        self._mark_interrupted()
        self._threads = [threading.Thread(target=self._work, args=(lane,), daemon=True,
                                          name=f"style-studio-{lane}") for lane in LANES]
        for thread in self._threads:
            thread.start()

    def _mark_interrupted(self) -> None:
        """Jobs left queued/running by a dead process can never finish: say so."""
        with self.store.batch():
            for doc in self.store.all("jobs"):
                if doc["status"] in ACTIVE:
                    self.store.update("jobs", doc["id"], status="interrupted",
                                      finished_at=utc_now(),
                                      message="Interrupted: the app stopped while this job "
                                              "was queued or running.")

    # -- public API -------------------------------------------------------------
    def submit(self, kind: str, fn: JobFn, *, title: str = "", style_id: str | None = None,
               params: dict[str, Any] | None = None, uses_device: bool = True) -> Job:
        """Queue `fn`; device jobs run one at a time, file jobs on their own lane."""
        job_id = new_id()
        if uses_device:
            self._take_a_place(job_id)
        doc = self.store.insert("jobs", asdict(Job(
            id=job_id, kind=kind, title=title or kind, style_id=style_id,
            params=params or {}, created_at=utc_now(),
            lane=DEVICE_LANE if uses_device else FILES_LANE,
            message="Waiting for the device" if uses_device else "Waiting",
        )))
        job = Job.from_doc(doc)
        with self._lock:
            self._live[job.id] = job
            self._fns[job.id] = fn
        self._queues[job.lane].put(job.id)
        return copy.deepcopy(job)

    def _take_a_place(self, job_id: str) -> None:
        """Refuse before anything is stored when the visitor's or the demo's line is full."""
        if self.max_active is not None:
            with self._lock:
                active = sum(1 for j in self._live.values()
                             if j.lane == DEVICE_LANE and j.status in ACTIVE)
            if active >= self.max_active:
                raise LimitReached(f"You already have {active} jobs waiting or running; "
                                   f"this demo allows {self.max_active}. Wait for one to "
                                   "finish, or cancel it.")
        if self.turns is not None:
            self.turns.join(job_id)

    def place_in_line(self, job_id: str) -> int | None:
        """A waiting device job's place in the shared line (1 = next), if there is one."""
        return self.turns.place(job_id) if self.turns is not None else None

    def _with_place(self, job: Job) -> Job:
        """A job waiting in the shared line says where it stands, read when asked."""
        place = self.place_in_line(job.id) if job.status == "queued" else None
        if place is not None:
            job.message = ("Waiting for the device: you are next" if place == 1 else
                           f"Waiting for the device: you are number {place} in line")
        return job

    def _running_for(self, job_id: str) -> float:
        with self._lock:
            started = self._started.get(job_id)
        return time.monotonic() - started if started is not None else 0.0

    def get(self, job_id: str) -> Job:
        with self._lock:
            live = copy.deepcopy(self._live.get(job_id))
        if live is not None:  # the line is asked outside our lock: it calls back into it
            return self._with_place(live)
        return Job.from_doc(self.store.require("jobs", job_id, "Job"))

    def list(self, style_id: str | None = None, kind: str | None = None,
             limit: int = 50) -> list[Job]:
        """Newest first; live state wins over the persisted copy."""
        filters = {k: v for k, v in (("style_id", style_id), ("kind", kind)) if v}
        jobs = [Job.from_doc(d) for d in self.store.find("jobs", **filters)]
        with self._lock:
            jobs = [copy.deepcopy(self._live.get(j.id, j)) for j in jobs]
        jobs = [self._with_place(j) for j in jobs]
        jobs.sort(key=lambda j: j.created_at, reverse=True)
        return jobs[:limit]

    def current(self) -> Job | None:
        """The running device job, else another running job, else the oldest queued one."""
        with self._lock:
            live = [j for j in self._live.values() if j.status in ACTIVE]
        live.sort(key=lambda j: (j.status != "running", j.lane != DEVICE_LANE, j.created_at))
        return self._with_place(copy.deepcopy(live[0])) if live else None

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop; a finished (or unknown) job is only read back. The lock is
        not reentrant: `get` runs after it is released."""
        waiting = False
        with self._lock:
            job = self._live.get(job_id)
            if job is not None:
                self._cancel.add(job_id)
                waiting = job.status == "queued"
                if waiting:
                    self._finish_locked(job, "cancelled",
                                        message="Cancelled before it started.")
        if waiting and self.turns is not None:  # its place in the shared line is free now
            self.turns.release(job_id)  # (outside our lock: the line calls back into it)
        return self.get(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while job_id in self._live and not self._live[job_id].finished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._done.wait(remaining)
        return self.get(job_id)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Ask the running job to stop and end the worker (used by tests and at exit)."""
        with self._lock:
            self._cancel.update(j for j, job in self._live.items() if not job.finished)
            queued = [j for j, job in self._live.items() if job.status == "queued"]
        for job_id in queued if self.turns is not None else []:
            self.turns.release(job_id)  # jobs that will never run leave the shared line
        for lane_queue in self._queues.values():
            lane_queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    # -- worker -------------------------------------------------------------------
    def _work(self, lane: str) -> None:
        while (job_id := self._queues[lane].get()) is not None:
            shared = lane == DEVICE_LANE and self.turns is not None
            if shared and not self._wait_for_turn(job_id):
                continue
            try:
                with self._lock:
                    job = self._live.get(job_id)
                    if job is None or job.status != "queued":
                        continue
                    job.status, job.started_at, job.message = "running", utc_now(), "Started"
                    self._started[job_id] = time.monotonic()
                    self._persist_locked(job)
                    fn = self._fns[job_id]
                self._run(job_id, fn)
            finally:
                if shared:
                    self.turns.release(job_id)  # type: ignore[union-attr]

    def _wait_for_turn(self, job_id: str) -> bool:
        """Wait in the shared line, telling the visitor their place; False if cancelled."""
        def still_wanted() -> bool:
            with self._lock:
                job = self._live.get(job_id)
                return job is not None and job.status == "queued" and job_id not in self._cancel

        return self.turns.wait(job_id, still_wanted)  # type: ignore[union-attr]

    def _run(self, job_id: str, fn: JobFn) -> None:
        ctx = JobContext(self, job_id)
        try:
            result = fn(ctx)
        except JobCancelled as exc:
            self._finish(job_id, "cancelled", message=str(exc))
        except StudioError as exc:
            self._finish(job_id, "failed", error=str(exc))
        except Exception as exc:
            detail = "".join(traceback.format_exception(exc)).strip().splitlines()
            self._report(job_id, log_line="\n".join(detail[-12:]))
            self._finish(job_id, "failed",
                         error=f"Unexpected error ({type(exc).__name__}): {exc}")
        else:
            status = "cancelled" if ctx.cancel_requested else "done"
            message = ctx.stop_reason if status == "cancelled" else "Finished"
            self._finish(job_id, status, message=message, result=result or {}, progress=1.0)

    def _finish(self, job_id: str, status: str, **changes: Any) -> None:
        with self._lock:
            self._finish_locked(self._live[job_id], status, **changes)

    def _finish_locked(self, job: Job, status: str, **changes: Any) -> None:
        job.status = status
        job.finished_at = utc_now()
        if status != "done":
            changes.pop("progress", None)
        for key, value in changes.items():
            setattr(job, key, value)
        self._persist_locked(job)
        self._live.pop(job.id, None)
        self._fns.pop(job.id, None)
        self._cancel.discard(job.id)
        self._started.pop(job.id, None)
        self._done.notify_all()

    def _cancel_requested(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._cancel

    def _report(self, job_id: str, fraction: float | None = None, message: str = "",
                extra: dict[str, Any] | None = None, log_line: str | None = None) -> None:
        with self._lock:
            job = self._live.get(job_id)
            if job is None:
                return
            if fraction is not None:
                job.progress = min(1.0, max(0.0, float(fraction)))
            if message:
                job.message = message
            if extra:
                job.extra.update(extra)
            if log_line:
                job.log = ([*job.log, log_line])[-self.log_tail:]
            now = time.monotonic()
            if now - self._last_persist.get(job_id, 0.0) >= self.persist_every_s:
                self._persist_locked(job)

    def _persist_locked(self, job: Job) -> None:
        self._last_persist[job.id] = time.monotonic()
        doc = asdict(job)
        doc.pop("id")
        self.store.update("jobs", job.id, **doc)

