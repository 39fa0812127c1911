"""The run page in a real browser: the demo style trained for a few steps, its 20 images
with creators and licences, every file downloaded byte for byte (and the zip), the way in
from the Playground, and an erased image marked erased on the page."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser import close_toasts, fill_number, open_tab, screenshot

pytestmark = pytest.mark.browser
STEPS = 4
DOWNLOADS = {  # elem_id -> the run file it must equal (relative to the run folder)
    "run-dl-diffusers": "lora/pytorch_lora_weights.safetensors",
    "run-dl-kohya": "lora/demo-mauve-stripes.kohya.safetensors",
    "run-dl-card": "README.md",
    "run-dl-report": "provenance.md",
    "run-dl-manifest": "manifest.json",
}




def files_holding(root: Path, data: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def download(page, elem_id: str, folder: Path) -> bytes:
    with page.expect_download() as info:
        page.locator(f"#{elem_id}").click()
    target = folder / info.value.suggested_filename
    info.value.save_as(target)
    return target.read_bytes()


def test_run_page_shows_every_image_offers_every_file_and_marks_erasures(app_url, page,
                                                                        tmp_path):
    page.goto(str(app_url))
    page.locator("#open-demo-style").click()
    expect(page.locator("#style-summary")).to_contain_text("Demo: mauve stripes",
                                                           timeout=30_000)

    open_tab(page, "Training")
    expect(page.locator("#train-dataset")).to_contain_text("20 image(s)", timeout=20_000)
    page.get_by_role("button", name="Advanced settings").click()
    for elem_id, value in (("train-max-steps", STEPS), ("train-resolution", 64),
                           ("train-sample-every", 0), ("train-sample-steps", 2),
                           ("train-checkpoint-every", 0)):
        fill_number(page, elem_id, value)
    page.locator("#train-start").click()
    expect(page.locator("#train-progress-text")).to_contain_text(
        re.compile(rf"done at step {STEPS}/{STEPS}"), timeout=180_000)

    # The run page: status, images with creators and licences, every file.
    summary = page.locator("#run-summary")
    expect(summary).to_contain_text("done, step 4 of 4", timeout=20_000)
    expect(summary).to_contain_text("Trained on 20 image(s) by Style Studio project")
    expect(page.locator("#run-thumbs img")).to_have_count(20, timeout=20_000)
    table = page.locator("#run-images")
    expect(table).to_contain_text("mauve-01.jpg")
    expect(table).to_contain_text("Style Studio project")
    expect(table).to_contain_text("CC0 1.0")
    expect(page.locator("#run-thumbs")).to_contain_text("mauve-01.jpg · Style Studio project")
    expect(page.locator("#train-style")).to_be_visible()
    # sampled at the end only: one point, which a line cannot draw; the chart says so
    expect(page.locator("#train-style")).to_contain_text("Sampled once so far (step 4: "
                                                         "distance 0.")
    run_dir = next(app_url.workspace.glob("styles/*/runs/*"))
    for elem_id, rel in DOWNLOADS.items():
        assert download(page, elem_id, tmp_path) == (run_dir / rel).read_bytes(), elem_id
    zipped = tmp_path / "bundle.zip"
    zipped.write_bytes(download(page, "run-dl-zip", tmp_path))
    with zipfile.ZipFile(zipped) as archive:
        names = archive.namelist()
        top = names[0].split("/")[0]
        for rel in DOWNLOADS.values():
            assert archive.read(f"{top}/{rel}") == (run_dir / rel).read_bytes(), rel
    close_toasts(page)
    page.locator("#run-page-title").scroll_into_view_if_needed()
    screenshot(page, "run-page")

    # From the Playground: the finished run is preselected, and its page is one click away.
    open_tab(page, "Playground")
    expect(page.locator("#pg-run input").first).to_have_value(re.compile(run_dir.name),
                                                              timeout=20_000)
    page.locator("#pg-open-run").click()
    # On a loaded machine the switch waits for the Playground's pending events (seen: >5 s).
    expect(page.get_by_role("tab", name="Training")).to_have_attribute("aria-selected", "true",
                                                                      timeout=30_000)
    expect(page.locator("#run-summary")).to_contain_text(run_dir.name)

    # Erase one image (a deletion request): the run page marks it erased, and no copy of
    # it is left anywhere in the workspace (its thumbnail was served by the run page).
    ws = app_url.workspace
    doomed = next(i for i in json.loads((ws / "studio.json").read_text())["images"].values()
                  if i["filename"] == "mauve-03.jpg")
    contents = [(ws / "styles" / doomed["style_id"] / doomed[key]).read_bytes()
                for key in ("stored_path", "thumb_path")]
    assert files_holding(ws / "gradio-cache", contents[1])  # the run page's thumbnail
    open_tab(page, "Consent & licence")
    boxes = page.locator("#consent-select")
    expect(boxes).to_contain_text("mauve-03.jpg", timeout=20_000)
    boxes.get_by_text("mauve-03.jpg", exact=False).click(timeout=120_000)  # after loading
    page.get_by_text("Revoke or erase (deletion request)").click()
    page.locator("#consent-erase-reason textarea, #consent-erase-reason input").first.fill(
        "deletion request, test")
    page.locator("#consent-erase").click()
    page.locator("#consent-erase-confirm").click()
    expect(boxes).not_to_contain_text("mauve-03.jpg", timeout=30_000)
    assert not any(files_holding(ws, data) for data in contents)

    open_tab(page, "Training")
    expect(table).to_contain_text(re.compile(r"erased \d{4}-\d{2}-\d{2}"), timeout=20_000)
    expect(summary).to_contain_text("1 erased")
    expect(summary).to_contain_text("contains erased data")
    expect(page.locator("#run-thumbs img")).to_have_count(19)
    expect(page.locator("#run-thumbs")).not_to_contain_text("mauve-03.jpg")
    # The files offered now are the redacted ones.
    manifest = download(page, "run-dl-manifest", tmp_path)
    assert manifest == (run_dir / "manifest.json").read_bytes()
    assert b"[erased " in manifest
    close_toasts(page)
    page.locator("#run-images").scroll_into_view_if_needed()
    screenshot(page, "run-page-erased")

