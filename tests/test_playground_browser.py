"""In a real browser: pick a trained run, generate, and see the image with its settings."""

from __future__ import annotations

import re

import pytest
from PIL import Image
from playground_fixtures import make_lora_run
from playwright.sync_api import expect

from browser import screenshot
from style_studio.studio import Studio

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path):
    """A style with one trained LoRA run, written before the app opens the store."""
    root = tmp_path / "workspace"
    with Studio.open(root) as studio:
        style = studio.styles.create("Ink washes", trigger="inkwash", family="sd15")
        run_id = make_lora_run(studio, style.id, steps=(100,))
    (tmp_path / "ids.txt").write_text(f"{style.id} {run_id}")
    return root


def set_number(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input[type=number]").first
    box.fill(value)
    box.press("Tab")


def test_generate_an_image_and_see_it_with_its_settings(app_url, page, tmp_path):
    style_id, run_id = (tmp_path / "ids.txt").read_text().split()
    page.goto(str(app_url))
    page.get_by_role("tab", name="Playground").click()
    # the style's defaults arrive with the page's first events: slow on a busy machine
    expect(page.locator("#pg-hint")).to_contain_text("1 run(s) with a trained LoRA",
                                                     timeout=30_000)
    expect(page.locator("#pg-run input").first).to_have_value(re.compile(run_id))
    expect(page.locator("#pg-prompt textarea")).to_have_value(re.compile(r"^inkwash, "),
                                                              timeout=30_000)

    page.locator("#pg-random-seed input[type=checkbox]").uncheck()
    set_number(page, "pg-seed", "1234")
    set_number(page, "pg-steps", "4")
    page.locator("#pg-generate").click()

    expect(page.locator("#pg-status")).to_contain_text("saved 1 image(s)", timeout=90_000)
    output = page.locator("#pg-output")
    expect(output.locator("img").first).to_be_visible(timeout=15_000)
    expect(output).to_contain_text(f"seed 1234 · LoRA {run_id} final @ 1")
    output.locator("img").first.click()
    settings = page.locator("#pg-settings")
    expect(settings).to_contain_text("inkwash, a lighthouse", timeout=10_000)
    expect(settings).to_contain_text(run_id)
    # Signed with the workspace identity, checked against its root.
    expect(settings).to_contain_text("Content Credentials intact and trusted")
    expect(page.locator("#pg-near-copies")).to_be_hidden()
    expect(page.locator("#pg-history img").first).to_be_visible()
    screenshot(page, "playground-generated")

    # "Use these settings again" from the history restores the fixed seed.
    set_number(page, "pg-seed", "1")
    page.locator("#pg-history img").first.click()
    expect(settings).to_contain_text("1234")
    page.locator("#pg-reuse").click()
    expect(page.locator("#pg-seed input[type=number]").first).to_have_value("1234")
    expect(page.locator("#pg-random-seed input[type=checkbox]")).not_to_be_checked()

    files = sorted((app_url.workspace / "styles" / style_id / "outputs").glob("*.png"))
    assert len(files) == 1
    chunks = Image.open(files[0]).text
    assert (chunks["seed"], chunks["steps"], chunks["run_id"], chunks["checkpoint"]) == (
        "1234", "4", run_id, "final")
    # A/B and a grid from the same form: labelled images side by side.
    page.locator("#pg-ab").click()
    expect(page.locator("#pg-status")).to_contain_text("saved 2 image(s)", timeout=90_000)
    expect(output).to_contain_text("A · seed 1234 · base model, no LoRA")
    expect(output).to_contain_text(f"B · seed 1234 · LoRA {run_id} final @ 1")
    page.get_by_text("Grid: compare checkpoints").click()
    page.locator("#pg-grid").click()
    expect(page.locator("#pg-status")).to_contain_text("saved 6 image(s)", timeout=90_000)
    expect(output).to_contain_text("Step 100 · scale 0.5")
    screenshot(page, "playground-grid")
