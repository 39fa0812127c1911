"""Two strangers on the public demo (Space mode), each in a browser of their own.

Alice makes a style and uploads pictures, then trains the demo style; Bob, in a separate
browser context (his own cookies), sees none of it, cannot fetch Alice's files (nor can a
plain HTTP client without cookies), never sees Alice's job in his status line, and his
own demo training waits its turn in the shared line, finishes, and his A/B works.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect
from training_helpers import shape_images, write_images

from browser import fill_number, screenshot, start_app, stop_app

pytestmark = pytest.mark.browser
STEPS = 30  # enough to finish a run and an A/B; the look of the LoRA is tested elsewhere


@pytest.fixture
def space_app(tmp_path):
    app = start_app(tmp_path / "space-data", extra_args=["--space"])
    yield app
    stop_app(app)


def _browser(chromium_browser, url: str):
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    return context, page


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _open_demo(page) -> None:
    page.locator("#open-demo-style").click()
    expect(page.locator("#style-summary")).to_contain_text("Demo: mauve stripes",
                                                           timeout=60_000)


def _train(page, steps: int) -> None:
    page.get_by_role("tab", name="Training").click()
    expect(page.locator("#train-dataset")).to_contain_text("20", timeout=30_000)
    page.locator("#train-advanced").click()
    fill_number(page, "train-max-steps", steps)
    page.locator("#train-start").click()


def test_two_visitors_never_meet_and_share_the_device_fairly(space_app, chromium_browser,
                                                             tmp_path):
    url = str(space_app)
    alice_ctx, alice = _browser(chromium_browser, url)
    bob_ctx, bob = _browser(chromium_browser, url)
    try:
        banner = alice.locator("#space-banner")
        expect(banner).to_contain_text("temporary")
        expect(banner).to_contain_text("proves nothing")

        # Alice: the demo style, then a style of her own with three pictures.
        _open_demo(alice)
        alice.get_by_text("New style").click()
        alice.locator("#new-style-name textarea, #new-style-name input").first.fill("Alice inks")
        alice.locator("#new-style-trigger textarea, #new-style-trigger input").first.fill("aink")
        alice.locator("#create-style").click()
        expect(alice.locator("#style-summary")).to_contain_text("Alice inks", timeout=15_000)
        files = write_images(tmp_path / "alice", shape_images(3, size=128), prefix="alice")
        alice.locator("#images-upload input[type=file]").set_input_files([str(f) for f in files])
        expect(alice.locator("#images-summary")).to_contain_text("3 images", timeout=60_000)
        expect(alice.locator("#images-folder")).to_be_hidden()  # no server paths here
        thumb = alice.locator("#images-gallery img").first
        expect(thumb).to_be_visible(timeout=20_000)
        address = thumb.get_attribute("src")
        address = address if address.startswith("http") else url.rstrip("/") + address
        screenshot(alice, "space-alice")

        # Bob: an empty demo of his own; Alice's file answers only Alice.
        bob.reload()
        expect(bob.locator("#demo-offer")).to_be_visible(timeout=30_000)
        expect(bob.locator("#style-summary")).not_to_contain_text("Alice inks")
        assert alice_ctx.request.get(address).status == 200
        assert bob_ctx.request.get(address).status == 404
        assert _status(address) == 404  # a plain HTTP client, no cookies

        # Alice trains the demo style; Bob's page never shows her job.
        alice.locator("#style-selector input").first.click()
        alice.get_by_role("option", name="Demo: mauve stripes").click()
        expect(alice.locator("#style-summary")).to_contain_text("Demo: mauve stripes")
        _train(alice, STEPS)
        expect(alice.locator("#train-progress-text")).to_contain_text("Step", timeout=120_000)
        expect(bob.locator("#job-status")).to_contain_text("Device idle")
        _open_demo(bob)
        _train(bob, STEPS)
        bob_progress = bob.locator("#train-progress-text")
        expect(bob_progress).to_contain_text(re.compile("you are next|Step"), timeout=30_000)
        expect(bob.locator("#job-status")).not_to_contain_text("Alice")
        screenshot(bob, "space-bob-waiting")
        expect(alice.locator("#train-progress-text")).to_contain_text(
            re.compile(rf"done at step {STEPS}/{STEPS}"), timeout=600_000)
        expect(bob_progress).to_contain_text(re.compile(rf"done at step {STEPS}/{STEPS}"),
                                             timeout=600_000)

        # Bob's A/B with his own LoRA.
        bob.get_by_role("tab", name="Playground").click()
        expect(bob.locator("#pg-run input").first).to_have_value(
            re.compile(r"^(?!Base model)."), timeout=20_000)
        fill_number(bob, "pg-count", 2)
        bob.locator("#pg-ab").click()
        expect(bob.locator("#pg-status")).to_contain_text("saved 4 image(s)", timeout=300_000)
        expect(bob.locator("#pg-output img")).to_have_count(4, timeout=20_000)
        screenshot(bob, "space-bob-ab")
    finally:
        alice_ctx.close()
        bob_ctx.close()
