"""The Captions tab in a real browser: auto-caption with the tiny model, edit, approve."""

from __future__ import annotations

import json
import re
import time

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from browser import screenshot
from style_studio.studio import Studio

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path):
    """One style with one image, imported through the Images service before the app starts."""
    root = tmp_path / "workspace"
    picture = tmp_path / "heron.png"
    image = Image.new("RGB", (320, 256), (236, 230, 214))
    draw = ImageDraw.Draw(image)
    draw.line((60, 230, 150, 40), fill=(40, 40, 48), width=9)
    draw.ellipse((140, 30, 200, 80), fill=(60, 60, 70))
    image.save(picture)
    with Studio.open(root) as studio:
        style = studio.styles.create("Ink washes", trigger="inkwash")
        report = studio.images.ingest(style.id, [picture])
        assert report.added, report
    return root


def stored_captions(workspace) -> dict:
    return json.loads((workspace / "studio.json").read_text())["captions"]


def test_auto_caption_then_edit_and_approve(app_url, page):
    page.goto(str(app_url))
    page.get_by_role("tab", name="Captions").click()
    summary = page.locator("#captions-summary")
    expect(summary).to_contain_text("1 image", timeout=20_000)
    expect(summary).to_contain_text("1 without a caption")
    status = page.locator("#captions-status")
    expect(status).to_contain_text("no caption")

    # Draft with the tiny random captioner: the same job and code path as a real model.
    page.locator("#captions-custom-model textarea, #captions-custom-model input").first.fill(
        "tiny-blip")
    expect(page.locator("#captions-model-info")).to_contain_text("random words")
    page.locator("#captions-auto-run").click()
    expect(page.locator("#captions-job")).to_contain_text("Auto-captioned 1 image",
                                                          timeout=60_000)
    box = page.locator("#captions-text textarea")
    expect(box).to_have_value(re.compile(r"^inkwash, \w+"), timeout=15_000)
    expect(status).to_contain_text("draft")
    expect(status).to_contain_text("auto: tiny-blip")

    # Words typed but not saved survive a second auto-caption run and a trip to another tab.
    unsaved = "inkwash, my own words, not saved yet"
    box.fill(unsaved)
    page.get_by_label("Replace existing drafts").check()
    page.locator("#captions-auto-run").click()
    expect(page.locator(".toast-body").filter(has_text="unsaved caption is still in the editor")
           ).to_be_visible(timeout=60_000)
    expect(box).to_have_value(unsaved)
    page.get_by_role("tab", name="Images").click()
    page.get_by_role("tab", name="Captions").click()
    expect(summary).to_contain_text("1 image", timeout=20_000)
    expect(box).to_have_value(unsaved)
    (draft,) = stored_captions(app_url.workspace).values()
    assert draft["text"] != unsaved and draft["status"] == "draft"

    # The artist's own words, then approval: the status changes in the editor and table.
    box.fill("[trigger], an old woman watching a grey heron lift off, loose ink wash")
    expect(page.locator("#captions-live-tokens")).to_contain_text("of 77 tokens")
    page.locator("#captions-approve").click()
    expect(status).to_contain_text("approved", timeout=15_000)
    expect(box).to_have_value("inkwash, an old woman watching a grey heron lift off, "
                              "loose ink wash")
    # The wording review marks the words about people; it never changes them.
    expect(page.locator("#captions-wording")).to_contain_text("old woman")
    expect(page.locator("#captions-wording")).to_contain_text("gender · age")
    expect(page.locator("#captions-table")).to_contain_text("✓ approved")
    expect(summary).to_contain_text("1 approved")
    page.locator(".toast-close").first.click()
    screenshot(page, "captions-approved")

    (caption,) = stored_captions(app_url.workspace).values()
    assert caption["status"] == "approved"
    assert caption["text"].startswith("inkwash, an old woman watching")
    assert caption["origin"]["kind"] == "manual" and caption["origin"]["model"] == "tiny-blip"

    # A bulk replace shows at once in the table, and undo brings the words back.
    page.get_by_text("Bulk edit").click()
    page.get_by_label("Find").fill("grey heron")
    page.get_by_label("Replace with").fill("white egret")
    page.locator("#captions-replace").click()
    table = page.locator("#captions-table")
    expect(page.locator("#captions-bulk-result")).to_contain_text("changed 1 caption",
                                                                  timeout=15_000)
    expect(table).to_contain_text("white egret")
    page.locator("#captions-undo").click()
    expect(page.locator("#captions-bulk-result")).to_contain_text("restored 1 caption",
                                                                  timeout=15_000)
    expect(table).to_contain_text("grey heron")
    expect(table).to_contain_text("✓ approved")

    page.get_by_text("Words, tokens and wording review").click()
    expect(page.locator("#captions-tokens")).to_contain_text("tokenizer of tiny-sd15")
    expect(page.locator("#captions-review")).to_contain_text("old woman (1)")
    screenshot(page, "captions-bulk-undo-and-review")

    page.locator("#captions-unapprove").click()
    expect(status).to_contain_text("draft", timeout=15_000)
    expect(summary).to_contain_text("0 approved")


def test_unsaved_words_ask_before_leaving_and_a_missing_model_is_one_log_line(app_url, page):
    """Issue 13: a reload lost an unsaved caption without a word; a captioner that is not
    downloaded printed a full traceback in the terminal (the page message was clear)."""
    page.goto(str(app_url))
    page.get_by_role("tab", name="Captions").click()
    expect(page.locator("#captions-summary")).to_contain_text("1 image", timeout=20_000)

    # BLIP is not on this machine: a clear message on the page, one plain line in the log.
    page.locator("#captions-auto-run").click()
    expect(page.get_by_text("Not downloaded yet").first).to_be_visible(timeout=15_000)
    # The server writes its log line after the page has its answer: on a loaded machine
    # later than half a second (a CI run found none yet), so wait for it, then count.
    deadline = time.monotonic() + 20
    while "ModelUnavailable: " not in app_url.log.read_text(errors="replace") \
            and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_timeout(500)  # a second line, if one were coming, has had its chance
    log = app_url.log.read_text(errors="replace")
    assert "Traceback" not in log, app_url.log_tail()
    assert len([line for line in log.splitlines() if "ModelUnavailable: " in line]) == 1
    page.locator(".toast-close").first.click()
    expect(page.locator("#captions-status")).to_contain_text("heron.png")

    # Previous / Next / Save draft are buttons that look like buttons.
    for button in ("#captions-prev", "#captions-next", "#captions-save"):
        background = page.locator(button).evaluate("b => getComputedStyle(b).backgroundColor")
        assert background not in ("rgba(0, 0, 0, 0)", "transparent"), (button, background)
    page.locator("#captions-editor").first.screenshot(
        path=str(screenshot(page, "captions-editor-buttons")))

    dialogs: list[str] = []

    def answer(dialog) -> None:
        dialogs.append(dialog.type)
        dialog.accept()

    page.on("dialog", answer)
    box = page.locator("#captions-text textarea")
    status = page.locator("#captions-status")
    box.click()
    box.press_sequentially("inkwash, words typed and not saved")
    page.reload()
    assert dialogs == ["beforeunload"]

    # Nothing typed, or everything saved: no question.
    page.get_by_role("tab", name="Captions").click()
    expect(page.locator("#captions-summary")).to_contain_text("1 image", timeout=20_000)
    page.reload()
    assert dialogs == ["beforeunload"]
    page.get_by_role("tab", name="Captions").click()
    expect(page.locator("#captions-summary")).to_contain_text("1 image", timeout=20_000)
    expect(status).to_contain_text("heron.png")  # the editor is filled: type after that
    box.click()
    box.press_sequentially("inkwash, saved words")
    page.locator("#captions-save").click()
    expect(status).to_contain_text("draft", timeout=15_000)
    expect(page.locator("#captions-loaded textarea, #captions-loaded input").first
           ).to_have_value("inkwash, saved words", timeout=15_000)
    page.reload()
    assert dialogs == ["beforeunload"]
