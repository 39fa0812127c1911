"""A FLUX.1 style from the page, on its tiny twin: create it with the FLUX.1 family (its
models' licences shown), add captioned images, approve, clear, train a few steps at 64 px,
and run an A/B in the Playground with FLUX.1's own conventions (28 steps, distilled
guidance 3.5, no negative prompt). The tiny twin has random weights: its pictures are
noise, and say so; the test checks that the LoRA changes them."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect
from training_helpers import shape_images, write_images

from browser import close_toasts, fill_number, open_tab, screenshot

pytestmark = pytest.mark.browser
CAPTIONS = ("fluxink, a circle and a square", "fluxink, two triangles", "fluxink, stripes")




def shot(page, name: str) -> None:
    close_toasts(page)
    screenshot(page, f"flow-{name}")


def test_a_flux1_style_is_created_trained_and_compared_from_the_page(app_url, page,
                                                                      tmp_path):
    started = time.monotonic()
    folder = tmp_path / "to-upload"
    files = write_images(folder, shape_images(len(CAPTIONS), size=96), prefix="shape")
    for path, caption in zip(files, CAPTIONS, strict=True):  # sidecars: draft captions
        path.with_suffix(".txt").write_text(caption, encoding="utf-8")

    # New style: only trainable families, and the family's real models with their terms.
    page.goto(str(app_url))
    page.get_by_text("New style").click()
    page.locator("#new-style-name textarea, #new-style-name input").first.fill("Flux inks")
    page.locator("#new-style-trigger textarea, #new-style-trigger input").first.fill("fluxink")
    page.locator("#new-style-family input").click()
    page.get_by_role("option", name="FLUX.1", exact=True).click()
    models = page.locator("#new-style-family-models")
    expect(models).to_contain_text("FLUX.1 [dev]", timeout=10_000)
    expect(models).to_contain_text("non-commercial")
    expect(models).to_contain_text("24 GB of GPU memory")
    shot(page, "1-new-style")
    page.locator("#create-style").click()
    summary = page.locator("#style-summary")
    expect(summary).to_contain_text("Flux inks", timeout=15_000)
    expect(summary).to_contain_text("FLUX.1")
    expect(summary).to_contain_text("Tiny random model")
    page.get_by_text("Style settings").click()
    close_toasts(page)  # before the list opens: a click elsewhere would close it
    page.locator("#style-base-model input").first.click()
    dev = page.get_by_role("option", name="FLUX.1 [dev]")
    expect(dev).to_contain_text("non-commercial")
    expect(dev).to_contain_text("not on this machine")
    expect(page.get_by_role("option", name="FLUX.1 [schnell]")).to_contain_text(
        "commercial use OK")
    screenshot(page, "flow-2-base-models")
    page.keyboard.press("Escape")

    # Images with .txt sidecars; each draft caption approved; consent as own work.
    open_tab(page, "Images")
    page.locator("#images-upload input[type=file]").set_input_files(
        [str(p) for p in files] + [str(p.with_suffix(".txt")) for p in files])
    expect(page.locator("#images-report")).to_contain_text("3 added", timeout=60_000)
    open_tab(page, "Captions")
    captions = page.locator("#captions-summary")
    expect(captions).to_contain_text("3 draft", timeout=20_000)
    for approved in range(1, 4):
        page.locator("#captions-approve-next").click()
        expect(captions).to_contain_text(f"{approved} approved", timeout=15_000)
    page.locator("#captions-words").get_by_text("Words, tokens and wording review").click()
    tokens = page.locator("#captions-tokens")
    expect(tokens).to_contain_text("T5 tokenizer of tiny-flux1 (limit 512 tokens")
    expect(tokens).to_contain_text("CLIP encoder also reads the first 77 tokens")
    shot(page, "3-captions")
    open_tab(page, "Consent & licence")
    page.locator("#consent-own-name textarea, #consent-own-name input").first.fill("Ana")
    page.locator("#consent-own").click()
    page.locator("#consent-own-confirm-yes").click()
    expect(page.locator("#consent-gate")).to_contain_text("3 of 3 images can be trained on",
                                                          timeout=15_000)

    # Training: the UNet-only choices are off and say why; a few steps at 64 px.
    open_tab(page, "Training")
    expect(page.locator("#train-dataset")).to_contain_text("3 image(s) will be trained on",
                                                           timeout=20_000)
    page.get_by_role("button", name="Advanced settings").click()
    expect(page.locator("#train-family-note")).to_contain_text("FLUX.1 trains its LoRA")
    expect(page.locator("#train-train-text-encoder input")).to_be_disabled()
    expect(page.locator("#train-targets input").first).to_be_disabled()
    sample_steps = page.locator("#train-sample-steps input").first
    expect(sample_steps).to_have_value("28")
    page.get_by_role("radio", name="Balanced").click()  # a preset keeps FLUX.1's 28
    expect(page.locator("#train-max-steps input").first).to_have_value("1500")
    expect(sample_steps).to_have_value("28")
    for elem_id, value in (("train-max-steps", 6), ("train-resolution", 64),
                           ("train-batch-size", 1), ("train-learning-rate", 0.05),
                           ("train-sample-every", 0), ("train-sample-steps", 4),
                           ("train-checkpoint-every", 0)):
        fill_number(page, elem_id, value)
    page.locator("#train-start").click()
    progress = page.locator("#train-progress-text")
    expect(progress).to_contain_text(re.compile(r"done at step (\d+)/\1"), timeout=120_000)
    shot(page, "4-trained")
    run_id = next(app_url.workspace.glob("styles/*/runs/*")).name

    # Playground: the new run preselected, FLUX.1's conventions, then A/B.
    open_tab(page, "Playground")
    expect(page.locator("#pg-run input").first).to_have_value(re.compile(run_id),
                                                              timeout=20_000)
    conventions = page.locator("#pg-conventions")
    expect(conventions).to_contain_text("28 steps at guidance 3.5")
    expect(conventions).to_contain_text("distilled guidance")
    expect(conventions).to_contain_text("no negative prompt")
    expect(page.locator("#pg-negative")).to_be_hidden()
    expect(page.locator("#pg-steps input[type=number]").first).to_have_value("28")
    page.locator("#pg-random-seed input[type=checkbox]").uncheck()
    fill_number(page, "pg-seed", 5)
    page.locator("#pg-ab").click()
    expect(page.locator("#pg-status")).to_contain_text("saved 2 image(s)", timeout=60_000)
    output = page.locator("#pg-output")
    expect(output.locator("img")).to_have_count(2, timeout=15_000)
    expect(output).to_contain_text("A · seed 5 · base model, no LoRA")
    expect(output).to_contain_text(f"B · seed 5 · LoRA {run_id} final @ 1")
    shot(page, "5-playground-ab")

    outputs = sorted(app_url.workspace.glob("styles/*/outputs/*.png"))
    (base,), (lora,) = ([p for p in outputs if f"-ab-{kind}-" in p.name]
                        for kind in ("base", "lora"))
    a, b = (np.asarray(Image.open(p).convert("RGB"), dtype=np.int16) for p in (base, lora))
    assert a.shape == b.shape == (64, 64, 3) and not np.array_equal(a, b)
    chunks = Image.open(lora).text
    assert (chunks["steps"], chunks["guidance"], chunks["run_id"]) == ("28", "3.5", run_id)
    assert chunks.get("negative_prompt", "") == ""
    print(f"flow journey: {time.monotonic() - started:.0f} s")
