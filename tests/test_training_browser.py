"""Train from the page: start a tiny run, watch progress and a sample appear, reload and
find it still running, cancel it, and resume it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from training_helpers import trainable_workspace

from browser import fill_number, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path):
    """A style with four cleared, captioned images, made before the app starts."""
    return trainable_workspace(tmp_path, "Browser shapes")


def test_train_watch_cancel_and_resume_from_the_page(app_url, page):
    page.goto(str(app_url))
    page.get_by_role("tab", name="Training").click()
    expect(page.locator("#train-dataset")).to_contain_text("4 image(s) will be trained on",
                                                            timeout=20_000)
    page.get_by_role("button", name="Advanced settings").click()
    for elem_id, value in (("train-max-steps", 400), ("train-resolution", 64),
                           ("train-batch-size", 2), ("train-sample-every", 4),
                           ("train-sample-steps", 2), ("train-checkpoint-every", 20)):
        fill_number(page, elem_id, value)
    page.locator("#train-start").click()

    text = page.locator("#train-progress-text")
    expect(text).to_contain_text("Step", timeout=120_000)
    expect(page.locator("#train-samples img").first).to_be_visible(timeout=120_000)
    expect(page.locator("#train-history")).to_contain_text("running")

    page.reload()  # the page reattaches to the running job from the store
    page.get_by_role("tab", name="Training").click()
    expect(text).to_contain_text("Step", timeout=30_000)
    expect(page.locator("#train-samples img").first).to_be_visible(timeout=30_000)
    screenshot(page, "training-running")

    page.locator("#train-cancel").click()
    expect(text).to_contain_text("cancelled", timeout=60_000)
    expect(text).to_contain_text("Resume")
    expect(page.locator("#train-history")).to_contain_text("cancelled")
    expect(page.locator("#train-energy")).to_contain_text("estimate")
    screenshot(page, "training-cancelled")

    page.locator("#train-resume").click()
    expect(text).to_contain_text("Step", timeout=60_000)
    page.locator("#train-cancel").click()
    expect(text).to_contain_text("cancelled", timeout=60_000)
