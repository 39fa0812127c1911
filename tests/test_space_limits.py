"""Space mode in the core: visitors' studios are apart, limits refuse with clear words, the
device is shared fairly, and an idle visitor's workspace is removed completely."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from training_helpers import shape_images, write_images

from style_studio.base.errors import NotFound
from style_studio.base.family import TOY_ID
from style_studio.base.jobs import JobRunner
from style_studio.base.limits import DemoLimits, LimitReached
from style_studio.base.store import Store
from style_studio.base.turns import DeviceBusy, DeviceTurns
from style_studio.consent.records import ConsentRecord
from style_studio.studio import StudioConfig
from style_studio.training.config import TrainConfig
from style_studio.visitors.registry import Visitors, visitor_id

LIMITS = DemoLimits(max_styles=2, max_images=3, max_active_jobs=1, queue_capacity=2,
                    max_visitors=4)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def visitors(tmp_path, clock):
    made = Visitors(tmp_path / "space", tmp_path / "space" / "gradio-cache",
                    StudioConfig(default_base_model=TOY_ID, limits=LIMITS), clock=clock)
    yield made
    made.close()


def uploaded(visitors: Visitors, count: int, name: str, seed: int = 0) -> list[Path]:
    """Files as Gradio leaves them: in its common upload folder."""
    return write_images(visitors.cache_root / f"upload-{name}", shape_images(count, seed=seed),
                        prefix=name)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_two_visitors_have_separate_studios(visitors):
    alice, bob = visitors.studio(visitor_id("a" * 43)), visitors.studio(visitor_id("b" * 43))
    style = alice.styles.create("Alice's inks", trigger="aink")
    alice.images.ingest(style.id, uploaded(visitors, 2, "alice"))
    assert bob.styles.list() == [] and bob.store.all("images") == []
    assert alice.workspace.root != bob.workspace.root
    assert alice.workspace.models_dir == bob.workspace.models_dir  # the toy is shared
    assert alice.workspace.upload_cache == visitors.served_dir(visitor_id("a" * 43))
    with pytest.raises(ValueError):
        visitors.studio("../" + "0" * 29)


def test_styles_paths_and_captioners_are_refused_with_reasons(visitors, tmp_path):
    studio = visitors.studio(visitor_id("c" * 43))
    with pytest.raises(LimitReached, match="toy model only"):
        studio.styles.create("Mine", base_model="/etc/passwd-model")
    style = studio.styles.create("One")
    studio.styles.create("Two", base_model=TOY_ID)
    with pytest.raises(LimitReached, match="at most 2 styles"):
        studio.styles.create("Three")
    with pytest.raises(LimitReached, match="toy model only"):
        studio.styles.update(style.id, base_model="runwayml/stable-diffusion-v1-5")
    folder = tmp_path / "server-folder"
    write_images(folder, shape_images(1))
    (folder / "img-00.txt").write_text("a caption from the server's disk")
    for call in (studio.images.ingest, studio.images.start_ingest):
        with pytest.raises(LimitReached, match="uploaded files only"):
            call(style.id, [folder])
    assert studio.store.all("images") == [] and studio.store.all("captions") == []
    with pytest.raises(LimitReached, match="listed models only"):
        studio.captions.auto(style.id, model=str(tmp_path))


def test_the_image_quota_refuses_the_next_file_and_keeps_the_rest(visitors):
    studio = visitors.studio(visitor_id("d" * 43))
    style = studio.styles.create("Quota")
    report = studio.images.ingest(style.id, uploaded(visitors, 5, "five"))
    assert len(report.added) == LIMITS.max_images
    assert [why for _, why in report.rejected] == [
        f"not imported: this demo keeps at most {LIMITS.max_images} images per visitor"] * 2
    other = studio.styles.create("Other")  # the quota is per visitor, over every style
    again = studio.images.ingest(other.id, uploaded(visitors, 1, "one", seed=9))
    assert not again.added and "at most 3 images" in again.rejected[0][1]


def test_training_is_the_toy_quick_draft_within_bounds(visitors):
    studio = visitors.studio(visitor_id("e" * 43))
    style = studio.styles.create("Train")
    refusals = {"steps": dict(max_steps=5000), "resolution": dict(resolution=1024),
                "batch size": dict(batch_size=16), "rank": dict(rank=128),
                "epochs": dict(epochs=3)}
    for word, change in refusals.items():
        with pytest.raises(LimitReached, match=word):
            studio.training._demo_check(TOY_ID, TrainConfig.preset("quick", **change))
    with pytest.raises(LimitReached, match="toy model only"):
        studio.training._demo_check("tiny-sd15", TrainConfig.preset("quick"))
    studio.training._demo_check(TOY_ID, TrainConfig.preset("quick", resolution=256))
    with pytest.raises(LimitReached, match="toy model only"):
        studio.training.start(style.id, TrainConfig.preset("quick"), base_model="tiny-sd15")
    assert studio.store.all("runs") == []


def test_the_device_line_is_first_come_first_served_and_bounded(tmp_path):
    turns = DeviceTurns(capacity=2)
    runners = [JobRunner(Store(tmp_path / f"{n}.json"), turns=turns) for n in range(2)]
    release = threading.Event()
    order: list[str] = []

    def hold(name: str):
        def work(ctx):
            order.append(name)
            if name == "first":
                release.wait(10)
        return work

    try:
        first = runners[0].submit("t", hold("first"))
        deadline = time.monotonic() + 10
        while runners[0].get(first.id).status != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        second = runners[1].submit("t", hold("second"))
        third = runners[0].submit("t", hold("third"))
        with pytest.raises(DeviceBusy, match="2 jobs are already waiting"):
            runners[1].submit("t", hold("refused"))
        deadline = time.monotonic() + 10
        while "in line" not in runners[0].get(third.id).message and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runners[1].get(second.id).message.endswith("you are next")
        assert runners[1].current().summary().endswith("you are next")  # the status line
        assert runners[0].get(third.id).message.endswith("you are number 2 in line")
        release.set()
        for runner, job in ((runners[1], second), (runners[0], third)):
            assert runner.wait(job.id, 20).status == "done"
        assert order == ["first", "second", "third"]
    finally:
        release.set()
        for runner in runners:
            runner.shutdown()


def test_a_visitor_may_queue_only_so_many_jobs(tmp_path):
    runner = JobRunner(Store(tmp_path / "s.json"), max_active=1)
    release = threading.Event()
    try:
        runner.submit("t", lambda ctx: release.wait(10))
        with pytest.raises(LimitReached, match="this demo allows 1"):
            runner.submit("t", lambda ctx: None)
        assert len(runner.store.all("jobs")) == 1  # the refused job left no record
    finally:
        release.set()
        runner.shutdown()


def test_a_job_past_its_time_limit_stops_at_its_next_check(tmp_path):
    runner = JobRunner(Store(tmp_path / "s.json"), time_limit_s=0.2)

    def slow(ctx):
        while True:
            time.sleep(0.05)
            ctx.check_cancelled()

    try:
        job = runner.wait(runner.submit("t", slow).id, 10)
        assert job.status == "cancelled" and "time limit" in job.message
    finally:
        runner.shutdown()


def test_an_idle_visitor_workspace_is_removed_completely(visitors, clock):
    gone, stays = visitor_id("f" * 43), visitor_id("g" * 43)
    studio = visitors.studio(gone)
    style = studio.styles.create("Expiring")
    report = studio.images.ingest(style.id, uploaded(visitors, 2, "expiring"))
    served = studio.workspace.browser_copy(
        studio.workspace.style_dir(style.id) / report.added[0].stored_path, "thumbs")
    assert served.is_file() and files_under(studio.workspace.root)
    clock.now += LIMITS.idle_expiry_s / 2
    visitors.studio(stays)
    clock.now += LIMITS.idle_expiry_s / 2 + 1
    assert visitors.sweep() == [gone]
    assert not (visitors.folder / gone).exists()
    assert not visitors.served_dir(gone).exists()
    assert (visitors.folder / stays).is_dir()
    assert files_under(visitors.cache_root / "upload-expiring") == []  # uploads were read


def test_the_demo_style_opens_for_a_visitor_within_the_quota(tmp_path, clock):
    visitors = Visitors(tmp_path / "space", tmp_path / "space" / "gradio-cache",
                        StudioConfig(default_base_model=TOY_ID, limits=DemoLimits()),
                        clock=clock)
    try:
        studio = visitors.studio(visitor_id("h" * 43))
        style = studio.demo.open()  # its artworks ship with the app: not a visitor's path
        assert style.base_model == TOY_ID and len(studio.store.all("images")) == 20
        assert studio.training.plan(style.id).included
    finally:
        visitors.close()


def test_a_visitor_cannot_reach_anothers_style_run_or_job(visitors):
    alice, bob = visitors.studio(visitor_id("i" * 43)), visitors.studio(visitor_id("j" * 43))
    style = alice.styles.create("Alice's")
    job = alice.images.start_ingest(style.id, uploaded(visitors, 1, "alice-job"))
    alice.jobs.wait(job.id, 30)
    alice.store.insert("runs", {"id": "run0alice000", "style_id": style.id, "status": "done"})
    for attempt in (lambda: bob.styles.get(style.id), lambda: bob.styles.delete(style.id),
                    lambda: bob.jobs.cancel(job.id), lambda: bob.training.cancel("run0alice000"),
                    lambda: bob.training.resume("run0alice000")):
        with pytest.raises(NotFound):
            attempt()
    image = alice.store.all("images")[0]["id"]
    assert not bob.consent.set([image], ConsentRecord(creator="Mallory")).changed
    assert bob.consent.erase([image], "Mallory wants it gone").failed
    assert alice.styles.get(style.id).name == "Alice's"
    assert alice.jobs.get(job.id).status == "done"
    assert alice.consent.get(image).record.creator != "Mallory"
    assert alice.workspace.style_dir(style.id).joinpath(
        alice.store.get("images", image)["stored_path"]).is_file()


def test_the_demo_holds_a_bounded_number_of_visitors_and_closes_quiet_ones(visitors, clock):
    first = visitors.studio(visitor_id("k" * 43))
    for letter in "lmn":
        visitors.studio(visitor_id(letter * 43))
    with pytest.raises(LimitReached, match="as many visitors as it can"):
        visitors.studio(visitor_id("o" * 43))
    assert visitors.studio(visitor_id("k" * 43)) is first  # a known visitor still gets in
    clock.now += LIMITS.idle_close_s + 1
    assert visitors.sweep() == []  # quiet, not yet expired
    assert visitor_id("k" * 43) not in visitors._open
    again = visitors.studio(visitor_id("k" * 43))
    assert again is not first and again.workspace.root == first.workspace.root


def test_the_time_limit_stops_a_training_at_a_step_and_it_can_resume(studio, tmp_path):
    """The trainer asks `cancel_requested` between steps: the limit must reach it there,
    and the run is kept (a checkpoint) to resume, like a cancel."""
    from training_helpers import make_trainable_style, tiny_config

    studio.jobs.time_limit_s = 4.0  # what Space mode sets from DemoLimits.job_time_limit_s
    style, _ = make_trainable_style(studio, tmp_path)
    job = studio.jobs.wait(studio.training.start(style.id, tiny_config(max_steps=20000)).id, 300)
    assert job.status == "cancelled", job.error
    assert job.message.startswith("Stopped by the demo's time limit at step ")
    run = studio.training.get_run(job.params["run_id"])
    assert run.status == "cancelled" and 0 < run.step < 20000


def test_a_cancelled_or_abandoned_waiting_job_frees_its_place_in_line(tmp_path):
    turns = DeviceTurns(capacity=1)
    release = threading.Event()
    holder = JobRunner(Store(tmp_path / "a.json"), turns=turns)
    other = JobRunner(Store(tmp_path / "b.json"), turns=turns)
    try:
        running = holder.submit("t", lambda ctx: release.wait(10))
        deadline = time.monotonic() + 10
        while holder.get(running.id).status != "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        waiting = other.submit("t", lambda ctx: None)
        with pytest.raises(DeviceBusy):
            other.submit("t", lambda ctx: None)
        other.cancel(waiting.id)
        again = other.submit("t", lambda ctx: None)  # the cancelled job's place is free
        other.shutdown()  # a closed studio's waiting jobs leave the line too
        assert turns.place(again.id) is None
        holder.submit("t", lambda ctx: None)
    finally:
        release.set()
        holder.shutdown()
