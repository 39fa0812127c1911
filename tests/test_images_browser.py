"""In a real browser: upload images on the Images tab, see them in the gallery, remove one."""

from __future__ import annotations

import re

import pytest
from image_files import gps_image, picture, save
from playwright.sync_api import expect

from browser import screenshot
from style_studio.studio import Studio

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path):
    """A workspace with one style, made before the app starts (one writer at a time)."""
    workspace = tmp_path / "workspace"
    with Studio.open(workspace) as studio:
        studio.styles.create("Ink washes", trigger="inkwash", family="sd15")
    return workspace


def test_three_uploaded_images_appear_in_the_gallery(app_url, page, tmp_path):
    folder = tmp_path / "to-upload"
    files = [gps_image(folder / "heron.png", "PNG"),  # carries a GPS location
             save(picture(2), folder / "crane.jpg", quality=92),
             save(picture(3, (900, 600)), folder / "reeds.webp", quality=90)]
    bad = folder / "not-an-image.png"
    bad.write_text("<!DOCTYPE html><html><body>oops</body></html>")

    page.goto(str(app_url))
    expect(page.locator("#style-summary")).to_contain_text("Ink washes", timeout=20_000)
    page.locator("#images-upload input[type=file]").set_input_files(
        [str(p) for p in [*files, bad]])

    expect(page.locator("#images-report")).to_contain_text("3 added, 1 rejected",
                                                           timeout=60_000)
    expect(page.locator("#images-report")).to_contain_text("HTML web page")
    expect(page.locator("#images-report")).to_contain_text(
        "GPS location removed from 1 image: heron.png")
    gallery = page.locator("#images-gallery img")
    expect(gallery).to_have_count(3, timeout=15_000)
    expect(page.locator("#images-summary")).to_contain_text(
        "3 images; 3 need captions; 3 need consent")
    for name in ("heron.png", "crane.jpg", "reeds.webp"):
        expect(page.locator("#images-gallery")).to_contain_text(name)
    screenshot(page, "images-gallery")

    gallery.first.click()
    expect(page.locator("#images-detail-text")).to_contain_text("sha256 of the stored copy")
    expect(page.locator("#images-detail-text")).to_contain_text("heron.png")
    expect(page.locator("#images-detail-text")).to_contain_text("GPS location removed")
    expect(page.locator("#images-detail-text")).to_contain_text(
        re.compile(r"stored as PNG \(\d+(\.\d)? (KB|MB)\)"))  # never "0.0 MB"
    screenshot(page, "images-detail")

    page.locator("#images-remove").click()
    expect(page.locator("#images-remove-confirm")).to_contain_text("cannot be undone")
    page.locator("#images-remove-confirm-yes").click()
    expect(gallery).to_have_count(2, timeout=15_000)
    expect(page.locator("#images-summary")).to_contain_text("2 images")

    assert len(list(app_url.workspace.glob("styles/*/images/*"))) == 2

    # A smaller copy of the crane is flagged as a near-duplicate, shown side by side, dropped.
    small = save(picture(2).resize((480, 384)), folder / "crane-small.jpg", quality=85)
    page.locator("#images-upload input[type=file]").set_input_files([str(small)])
    expect(page.locator("#images-report")).to_contain_text("1 added", timeout=60_000)
    pairs = page.locator("#images-near-duplicates")
    expect(pairs).to_contain_text("crane.jpg · 640×512", timeout=15_000)
    expect(pairs).to_contain_text("crane-small.jpg · 480×384")
    expect(page.locator("#images-pair input")).to_have_value(
        re.compile(r"crane\.jpg ↔ crane-small\.jpg \(\d bits apart\)"))
    expect(page.locator("#images-summary")).to_contain_text("1 near-duplicate")
    expect(pairs.locator("img")).to_have_count(2)
    screenshot(page, "images-near-duplicates")
    pairs.get_by_role("button", name="Drop right…").click()
    expect(page.locator("#images-drop-confirm")).to_contain_text("crane-small.jpg")
    page.locator("#images-drop-confirm-yes").click()
    expect(page.locator("#images-summary")).not_to_contain_text("near-duplicate",
                                                                timeout=15_000)
    expect(gallery).to_have_count(2)
    assert len(list(app_url.workspace.glob("styles/*/images/*"))) == 2
    cache = app_url.workspace / "gradio-cache"
    leftovers = [p.name for p in cache.rglob("*") if p.is_file()
                 and p.name in {"heron.png", "crane.jpg", "reeds.webp", "not-an-image.png"}]
    assert leftovers == []  # the uploaded temporary copies were deleted after the import
    # Gradio's File opened one unused empty temp file per upload in the cache (issue 12).
    empty = [p.name for p in cache.rglob("*") if p.is_file() and p.stat().st_size == 0]
    assert empty == []
