"""Two traps of issue 13 in a real browser: a second click on Start must not queue a
duplicate run, and Cancel must act on the run shown in "Show run" (here one waiting for
the device), never on the run that is training."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect
from test_run_page_browser import close_toasts, fill_number, open_tab
from training_helpers import make_trainable_style, tiny_config

from browser import screenshot
from style_studio.studio import Studio

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path):
    """A style with a stopped run that can be resumed (trained for a few steps and
    cancelled before the app starts)."""
    workspace = tmp_path / "workspace"
    with Studio.open(workspace) as studio:
        style, _ = make_trainable_style(studio, tmp_path, count=4, name="Queue shapes")
        job = studio.training.start(style.id, tiny_config(max_steps=500, checkpoint_every=2),
                                    base_model="tiny-sd15")
        deadline = time.monotonic() + 120
        while studio.training.get_run(job.params["run_id"]).step < 2:
            assert time.monotonic() < deadline, "the run to resume never reached step 2"
            time.sleep(0.2)
        studio.training.cancel(job.params["run_id"])
        assert studio.jobs.wait(job.id, 120).status == "cancelled"
    return workspace


def runs_on_disk(app) -> dict[str, dict]:
    """The runs table as the app last wrote it, by run id."""
    table = json.loads((app.workspace / "studio.json").read_text())["runs"]
    return {doc["id"]: doc for doc in table.values()}


def choose_run(page, text: str) -> None:
    page.locator("#train-run-pick input").first.click()
    page.get_by_role("option", name=re.compile(re.escape(text))).click()


def test_start_twice_makes_one_run_and_cancel_acts_on_the_queued_run_shown(app_url, page):
    page.goto(str(app_url))
    open_tab(page, "Training")
    expect(page.locator("#train-dataset")).to_contain_text("4 image(s)", timeout=20_000)
    (stopped_id,) = runs_on_disk(app_url)
    page.get_by_role("button", name="Advanced settings").click()
    for elem_id, value in (("train-max-steps", 5000), ("train-resolution", 64),
                           ("train-sample-every", 0), ("train-checkpoint-every", 0)):
        fill_number(page, elem_id, value)

    # Start twice: one run, and the page says why Start is off. (A click that slips
    # through anyway is refused by the core: tests/test_run_page.py.)
    start = page.locator("#train-start")
    start.click()
    start.click(force=True)  # the second click, whether or not the button is off yet
    expect(start).to_be_disabled(timeout=30_000)
    runs = runs_on_disk(app_url)
    assert len(runs) == 2, runs
    (active_id,) = [run_id for run_id in runs if run_id != stopped_id]
    expect(page.locator("#train-start-note")).to_contain_text(
        f"Run {active_id} of this style is training: start another when it has finished, "
        "or cancel it.")
    progress = page.locator("#train-progress-text")
    expect(progress).to_contain_text("Step", timeout=60_000)
    time.sleep(2)  # a queued second start would have shown up by now
    assert len(runs_on_disk(app_url)) == 2
    close_toasts(page)

    # Resume the stopped run while the new one trains: it waits, and says so.
    choose_run(page, "cancelled")
    resume = page.locator("#train-resume")
    expect(resume).to_have_text(f"Resume run {stopped_id}")
    resume.click()
    expect(page.locator(".toast-body").filter(has_text="waits for the device")).to_contain_text(
        active_id, timeout=20_000)
    history = page.locator("#train-history")
    expect(history).to_contain_text("waiting")
    expect(progress).to_contain_text("Waiting for the device")
    screenshot(page, "run-page-queued")

    # Cancel acts on the run shown (the waiting one); the active run keeps training.
    cancel = page.locator("#train-cancel")
    expect(cancel).to_have_text(f"Cancel run {stopped_id}")
    cancel.click()
    expect(page.locator(".toast-body").filter(has_text="cancelled before it started")
           ).to_contain_text(f"Run {active_id} keeps training", timeout=20_000)
    expect(cancel).to_be_disabled()
    runs = runs_on_disk(app_url)
    assert runs[stopped_id]["status"] == "cancelled"
    assert runs[active_id]["status"] == "running"
    choose_run(page, "running")
    expect(progress).to_contain_text("Step")
    first = int(re.search(r"Step (\d+)/", progress.inner_text()).group(1))
    expect(progress).not_to_contain_text(f"Step {first}/", timeout=30_000)  # it moves on
    cancel.click()
    expect(progress).to_contain_text("cancelled", timeout=60_000)
