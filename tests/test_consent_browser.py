"""The Consent tab in a real browser: bulk-set a licence, see the badges change, erase."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect
from test_consent import add_image, files_containing

from browser import screenshot
from style_studio.studio import Studio

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path):
    """Three images in one style, written before the app (and its store) starts."""
    root = tmp_path / "workspace"
    with Studio.open(root) as studio:
        style = studio.styles.create("Ink washes", trigger="inkwash")
        for seed, name in enumerate(["heron.png", "reeds.png", "moon.png"], start=1):
            add_image(studio, style.id, name, seed)
    return root


def choose(page, field_id: str, option: str) -> None:
    page.locator(f"#{field_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_set_the_licence_of_selected_images_and_see_the_badges_change(app_url, page):
    page.goto(str(app_url))
    page.get_by_role("tab", name="Consent & licence").click()
    gate = page.locator("#consent-gate")
    expect(gate).to_contain_text("0 of 3 images can be trained on", timeout=20_000)
    boxes = page.locator("#consent-select")
    expect(boxes).to_contain_text("heron.png — ? no record")

    boxes.get_by_text("heron.png", exact=False).click()
    boxes.get_by_text("moon.png", exact=False).click()
    page.locator("#bulk-creator textarea, #bulk-creator input").first.fill("Ana Pérez")
    choose(page, "bulk-relationship", "Licensed")
    choose(page, "bulk-licence", "CC BY 4.0")
    choose(page, "bulk-status", "Cleared")
    page.locator("#consent-apply").click()

    expect(boxes).to_contain_text("heron.png — ✓ cleared · CC BY 4.0", timeout=15_000)
    expect(boxes).to_contain_text("moon.png — ✓ cleared · CC BY 4.0")
    expect(boxes).to_contain_text("reeds.png — ? no record")
    expect(page.locator("#consent-gallery")).to_contain_text("✓ cleared · CC BY 4.0")
    expect(gate).to_contain_text("2 of 3 images can be trained on")
    expect(gate).to_contain_text("attribution required (CC BY): credit Ana Pérez")
    page.locator(".toast-close").first.click()
    screenshot(page, "consent-bulk-licence")

    # One image: a click on its thumbnail opens its record; a saved change is kept in history.
    page.locator("#consent-gallery .thumbnail-item").first.click()
    expect(page.locator("#consent-image input")).to_have_value("heron.png")
    expect(page.locator("#one-creator textarea, #one-creator input").first).to_have_value(
        "Ana Pérez")
    page.locator("#one-notes textarea, #one-notes input").first.fill("scanned from sketchbook")
    page.locator("#consent-save").click()
    history = page.locator("#consent-history")
    expect(history).to_contain_text("scanned from sketchbook", timeout=15_000)
    expect(history).to_contain_text(re.compile(
        r"current \(since .*CC BY 4\.0.*scanned from sketchbook.*until .*CC BY 4\.0", re.S))
    screenshot(page, "consent-one-image-history")

    # The ledger downloads from the app's cache, never from the workspace's style folders.
    page.get_by_text("Overview and ledger").click()
    expect(page.locator("#consent-overview")).to_contain_text("By licence: CC BY 4.0 2")
    page.get_by_role("button", name="Export ledger (CSV)").click()
    expect(page.locator("#consent-download")).to_contain_text("consent-ledger-ink-washes")
    ledger = next((app_url.workspace / "gradio-cache").rglob("consent-ledger-*.csv"))
    assert "Ana Pérez" in ledger.read_text(encoding="utf-8-sig")

    # Erase them: the reason is typed, then the erasure is confirmed.
    ws = app_url.workspace
    db = json.loads((ws / "studio.json").read_text())
    doomed = [ws / "styles" / i["style_id"] / i[key] for i in db["images"].values()
              if i["filename"] != "reeds.png" for key in ("stored_path", "thumb_path")]
    contents = [path.read_bytes() for path in doomed]
    # Copies Gradio makes during a session (uploads, served files); the app cleared the
    # ones the fixture left before it started.
    for k, data in enumerate(contents):
        (ws / "gradio-cache" / f"session-{k}").mkdir(parents=True, exist_ok=True)
        (ws / "gradio-cache" / f"session-{k}" / "copy.bin").write_bytes(data)
    assert all(len(files_containing(ws, data)) >= 2 for data in contents)  # copies exist
    page.get_by_text("Revoke or erase (deletion request)").click()
    page.locator("#consent-erase-reason textarea, #consent-erase-reason input").first.fill(
        "deletion request from Ana, 3 May")
    page.locator("#consent-erase").click()
    expect(page.get_by_text("Erase 2 image(s)")).to_be_visible()
    page.locator("#consent-erase-confirm").click()
    expect(boxes).not_to_contain_text("heron.png", timeout=15_000)
    expect(gate).to_contain_text("0 of 1 images can be trained on")

    assert not any(files_containing(ws, data) for data in contents)
    db = json.loads((ws / "studio.json").read_text())
    assert [i["filename"] for i in db["images"].values()] == ["reeds.png"]
    assert list(db["consents"].values()) == []
    erased = [a for a in db["audit"].values() if a["action"] == "consent.erase"]
    assert len(erased) == 2 and erased[0]["details"]["reason"] == "deletion request from Ana, 3 May"


def saved_consents(workspace) -> dict:
    return json.loads((workspace / "studio.json").read_text()).get("consents", {})


def test_own_work_applies_to_the_ticked_images_and_asks_before_all(app_url, page):
    """Issue 13: one click with nothing ticked cleared every image. Now the ticked images
    are recorded; with none ticked the page asks first, and nothing is written until yes."""
    page.goto(str(app_url))
    page.get_by_role("tab", name="Consent & licence").click()
    gate = page.locator("#consent-gate")
    expect(gate).to_contain_text("0 of 3 images can be trained on", timeout=20_000)
    boxes = page.locator("#consent-select")
    confirm = page.locator("#consent-own-confirm")
    page.locator("#consent-own-name textarea, #consent-own-name input").first.fill("Mira Ko")

    # Nothing ticked: a question, not a change.
    page.locator("#consent-own").click()
    expect(confirm).to_contain_text("Apply to all 3 images?")
    screenshot(page, "consent-own-work-confirm")
    assert saved_consents(app_url.workspace) == {}
    page.locator("#consent-own-cancel").click()
    expect(confirm).to_be_hidden()
    expect(boxes).to_contain_text("heron.png — ? no record")
    assert saved_consents(app_url.workspace) == {}

    # One ticked: that one only, at once.
    boxes.get_by_text("reeds.png", exact=False).click()
    page.locator("#consent-own").click()
    expect(boxes).to_contain_text("reeds.png — ✓ cleared", timeout=15_000)
    expect(boxes).to_contain_text("heron.png — ? no record")
    expect(boxes).to_contain_text("moon.png — ? no record")
    expect(confirm).to_be_hidden()
    expect(gate).to_contain_text("1 of 3 images can be trained on")
    assert len(saved_consents(app_url.workspace)) == 1

    # Untick it, then choose all of them: asked, then confirmed.
    boxes.get_by_text("reeds.png", exact=False).click()
    page.locator("#consent-own").click()
    expect(confirm).to_contain_text("Apply to all 3 images?")
    assert len(saved_consents(app_url.workspace)) == 1
    page.locator("#consent-own-confirm-yes").click()
    expect(gate).to_contain_text("3 of 3 images can be trained on", timeout=15_000)
    expect(confirm).to_be_hidden()
    records = saved_consents(app_url.workspace).values()
    assert {(r["creator"], r["status"]) for r in records} == {("Mira Ko", "cleared")}
