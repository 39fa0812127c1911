"""One worker, jobs in order, cooperative cancel, failures captured, restart marks interrupted."""

from __future__ import annotations

import threading
import time

from style_studio.base.errors import InvalidInput
from style_studio.base.jobs import JobRunner
from style_studio.base.store import Store


def test_jobs_run_one_at_a_time_in_submission_order(studio):
    order: list[str] = []
    overlap = threading.Event()
    running = threading.Lock()

    def make(name: str):
        def fn(ctx):
            if not running.acquire(blocking=False):
                overlap.set()
            try:
                time.sleep(0.05)
                order.append(name)
                ctx.progress(1.0, f"{name} done")
            finally:
                running.release()
            return {"name": name}
        return fn

    jobs = [studio.jobs.submit("test", make(n)) for n in "abcde"]
    finished = [studio.jobs.wait(j.id, timeout=10) for j in jobs]
    assert order == list("abcde")
    assert not overlap.is_set()
    assert [j.status for j in finished] == ["done"] * 5
    assert finished[2].result == {"name": "c"}


def test_cancel_is_checked_between_steps_and_queued_jobs_never_start(studio):
    started = threading.Event()
    steps: list[int] = []

    def long_job(ctx):
        started.set()
        for step in range(1000):
            ctx.check_cancelled()
            steps.append(step)
            ctx.progress(step / 1000, f"step {step}")
            time.sleep(0.01)

    ran_second = threading.Event()
    first = studio.jobs.submit("train", long_job)
    second = studio.jobs.submit("other", lambda ctx: ran_second.set())
    assert started.wait(5)
    studio.jobs.cancel(second.id)
    studio.jobs.cancel(first.id)
    assert studio.jobs.wait(first.id, timeout=5).status == "cancelled"
    assert studio.jobs.get(second.id).status == "cancelled"
    time.sleep(0.1)
    assert not ran_second.is_set()
    assert len(steps) < 1000


def test_a_failing_job_is_reported_and_the_worker_lives_on(studio):
    def broken(ctx):
        raise ZeroDivisionError("division by zero")

    def refused(ctx):
        raise InvalidInput("The resolution must be a multiple of 64.")

    bad = studio.jobs.wait(studio.jobs.submit("x", broken).id, timeout=5)
    assert bad.status == "failed"
    assert "ZeroDivisionError" in bad.error and "division by zero" in bad.error
    assert any("Traceback" in line for line in bad.log)
    clear = studio.jobs.wait(studio.jobs.submit("x", refused).id, timeout=5)
    assert clear.error == "The resolution must be a multiple of 64."
    ok = studio.jobs.wait(studio.jobs.submit("x", lambda ctx: {"fine": True}).id, timeout=5)
    assert ok.status == "done" and ok.result == {"fine": True}


def test_progress_is_persisted_and_visible_while_running(studio):
    gate = threading.Event()

    def fn(ctx):
        ctx.progress(0.5, "half way", step=5)
        ctx.log("hello")
        gate.wait(5)

    job = studio.jobs.submit("x", fn)
    deadline = time.monotonic() + 5
    while studio.jobs.get(job.id).progress < 0.5 and time.monotonic() < deadline:
        time.sleep(0.01)
    live = studio.jobs.get(job.id)
    assert live.status == "running" and live.message == "half way"
    assert live.extra == {"step": 5} and live.log == ["hello"]
    assert studio.jobs.current().id == job.id
    gate.set()
    studio.jobs.wait(job.id, timeout=5)
    stored = studio.store.get("jobs", job.id)
    assert stored["status"] == "done" and stored["finished_at"]


def test_job_running_when_the_process_died_is_interrupted_after_restart(tmp_path):
    path = tmp_path / "studio.json"
    store = Store(path)
    runner = JobRunner(store)
    hold = threading.Event()
    started = threading.Event()

    def fn(ctx):
        started.set()
        hold.wait(10)

    running = runner.submit("train", fn)
    queued = runner.submit("caption", lambda ctx: None)
    assert started.wait(5)
    # Simulate the process dying: a new store and runner read the same file.
    restarted = JobRunner(Store(path))
    assert restarted.get(running.id).status == "interrupted"
    assert restarted.get(queued.id).status == "interrupted"
    assert "stopped" in restarted.get(running.id).message
    hold.set()
    restarted.shutdown()
    runner.shutdown()


def test_file_jobs_run_beside_a_device_job_but_device_jobs_never_overlap(studio):
    hold = threading.Event()
    training_started = threading.Event()

    def training(ctx):
        training_started.set()
        hold.wait(10)

    device_job = studio.jobs.submit("train", training)
    generate = studio.jobs.submit("generate", lambda ctx: {"ran": True})
    assert training_started.wait(5)
    imported = studio.jobs.wait(
        studio.jobs.submit("import", lambda ctx: {"ok": True}, uses_device=False).id, timeout=5)
    assert imported.status == "done" and imported.lane == "files"
    assert studio.jobs.get(generate.id).status == "queued"  # waits for the device
    assert studio.jobs.current().id == device_job.id
    hold.set()
    assert studio.jobs.wait(generate.id, timeout=5).status == "done"


def test_cancelling_a_finished_job_reads_it_back_and_returns(tmp_path):
    """Cancel on a job that already ended (a second click, a stale page) must answer at
    once with the job as it is; it used to wait forever on the runner's own lock."""
    runner = JobRunner(Store(tmp_path / "jobs.json"))
    job = runner.wait(runner.submit("quick", lambda ctx: {"ok": 1}).id, 10)
    answers: list = []
    caller = threading.Thread(target=lambda: answers.append(runner.cancel(job.id)),
                              daemon=True)
    caller.start()
    caller.join(5)
    assert not caller.is_alive(), "cancel of a finished job hangs"
    runner.shutdown()
    assert answers[0].status == "done" and answers[0].result == {"ok": 1}
