"""Verify in a real browser (issue 17): a tiny run trained through the studio, its LoRA and a
Playground-like output signed with the workspace identity before the app starts; the
signed PNG dropped into the Verify tab shows its run, its signer and the training set; a
text file gets plain words, not a traceback; the run page offers the provenance pack."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect
from test_run_page_browser import download, open_tab
from training_helpers import make_trainable_style, tiny_config
from verify_helpers import SIGNER, sign_run_and_output

from browser import screenshot
from style_studio.studio import Studio

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path: Path) -> Path:
    """A trained tiny run and a signed output, made before the app opens the workspace."""
    workspace = tmp_path / "workspace"
    with Studio.open(workspace) as studio:
        style, _ = make_trainable_style(studio, tmp_path, count=4, name="Verify shapes")
        job = studio.jobs.wait(studio.training.start(
            style.id, tiny_config(max_steps=2, checkpoint_every=0),
            base_model="tiny-sd15").id, 300)
        assert job.status == "done", job.error
        run = studio.training.get_run(job.result["run_id"])
        sign_run_and_output(workspace, run.run_dir, run.id, tmp_path / "signed-output.png",
                            style_name="Verify shapes")
        (tmp_path / "run-id.txt").write_text(run.id)
    return workspace


def test_a_signed_output_dropped_into_verify_shows_run_signer_and_training_set(
        app_url, page, tmp_path):
    run_id = (tmp_path / "run-id.txt").read_text()
    page.goto(str(app_url))
    open_tab(page, "Verify")
    drop = page.locator("#verify-file input[type=file]")

    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    drop.set_input_files([str(notes)])
    result = page.locator("#verify-result")
    expect(result).to_contain_text("This file cannot be checked", timeout=30_000)
    expect(result).to_contain_text("is a .txt file")
    expect(page.get_by_text("Traceback")).to_have_count(0)

    page.locator("#verify-file button[aria-label='Clear']").first.click()
    drop.set_input_files([str(tmp_path / "signed-output.png")])
    expect(result).to_contain_text("Content Credentials intact and trusted", timeout=30_000)
    expect(result).to_contain_text(f"signed by {SIGNER}")
    expect(result).to_contain_text(f"Made by training run {run_id}")
    expect(result).to_contain_text("4 images by 1 creator(s) (Ana Artist)")
    expect(result).to_contain_text("No training image has been erased since.")
    expect(result).to_contain_text(f"This workspace holds run {run_id}: style Verify shapes")
    screenshot(page, "verify-signed-output")

    # The run page offers the client's provenance pack beside the zip.
    open_tab(page, "Training")
    expect(page.locator("#run-dl-pack")).to_be_visible(timeout=30_000)
    pack = tmp_path / "pack.zip"
    pack.write_bytes(download(page, "run-dl-pack", tmp_path))
    with zipfile.ZipFile(pack) as archive:
        names = {name.split("/", 1)[1] for name in archive.namelist()}
    assert {"provenance-report.md", "provenance-report.html", "manifest.json", "ledger.csv",
            "public-certificate.pem", "training-content-summary.md",
            "c2pa/pytorch_lora_weights.c2pa"} <= names
    screenshot(page, "verify-run-page-pack")
