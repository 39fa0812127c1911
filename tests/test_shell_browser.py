"""The app opens in a real browser with six tabs, and a style can be created there."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from browser import screenshot
from style_studio.models.toy import TOY_LABEL

pytestmark = pytest.mark.browser
TAB_LABELS = ["Images", "Captions", "Consent & licence", "Training", "Playground",
              "Verify"]


def test_six_tabs_switch_and_a_style_is_created(app_url, page):
    page.goto(str(app_url))
    for label in TAB_LABELS:
        expect(page.get_by_role("tab", name=label)).to_be_visible()
    for label in TAB_LABELS[1:] + TAB_LABELS[:1]:
        page.get_by_role("tab", name=label).click()
        expect(page.get_by_role("tab", name=label)).to_have_attribute("aria-selected", "true")
    expect(page.locator("#job-status")).to_contain_text("Device idle")

    page.get_by_text("New style").click()
    page.locator("#new-style-name textarea, #new-style-name input").first.fill("Ink washes")
    page.locator("#new-style-trigger textarea, #new-style-trigger input").first.fill("inkwash")
    page.locator("#create-style").click()
    expect(page.locator("#style-summary")).to_contain_text("Ink washes", timeout=15_000)
    expect(page.locator("#style-summary")).to_contain_text("inkwash")
    # No real SD 1.5 here: a new style starts on the toy model, labelled for what it is.
    expect(page.locator("#style-summary")).to_contain_text(TOY_LABEL)
    page.get_by_text("Style settings").click()
    page.locator("#style-base-model input").first.click()
    expect(page.get_by_role("option", name="Tiny random model (random weights")).to_have_count(1)
    expect(page.get_by_role("option", name="Stable Diffusion 1.5")).to_contain_text(
        "not on this machine")
    page.keyboard.press("Escape")
    # What others may do with the style's pictures: no AI training unless the artist says so.
    expect(page.get_by_label("No: not for training AI (default)")).to_be_checked()
    expect(page.locator("#signing-author textarea, #signing-author input").first).to_have_value(
        "Style Studio user")
    screenshot(page, "shell-style-created")

    # A reload shows the same style again: the state lives in the store, not the page.
    page.reload()
    expect(page.locator("#style-summary")).to_contain_text("Ink washes", timeout=15_000)


def test_bad_style_name_shows_a_clear_error(app_url, page):
    page.goto(str(app_url))
    page.get_by_text("New style").click()
    page.locator("#new-style-trigger textarea, #new-style-trigger input").first.fill("two words")
    page.locator("#new-style-name textarea, #new-style-name input").first.fill("Bad")
    page.locator("#create-style").click()
    expect(page.get_by_text("must be one word")).to_be_visible(timeout=10_000)

