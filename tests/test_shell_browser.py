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


@pytest.mark.xfail(strict=False, reason="open bug: a style set by the app right after the "
                   "page loads can set off endless refreshes (not fixed yet; see the note)")
def test_a_style_set_by_the_app_refreshes_the_tabs_and_then_stops(app_url, page):
    """The address-keeping listener once re-fired the selector's change event forever (a
    js-only listener that returned a value): every tab refreshed about once a second, the
    server never idled, and on a loaded machine the Consent tab's list stayed covered by
    its loading overlay for minutes (test_run_page_browser, CI). It took a race (the app
    setting the style just after the page's own first announcement) and showed in 2 of 5
    runs of this test with the old listener — and, as CI at ddf3c5c and a local run
    showed, with that listener returning nothing and with no js on the change event at
    all: the cause is elsewhere (likely the page's own first announcement arriving after
    the app's), still open. Expected: the tabs refresh, then the page is quiet but for
    the job-status poll."""
    config = page.request.get(f"{app_url}config").json()
    selector = next(c["id"] for c in config["components"]
                    if c.get("props", {}).get("elem_id") == "style-selector")
    listeners = sum(any(t[0] == selector and t[1] == "change" for t in d.get("targets", []))
                    for d in config["dependencies"] if d.get("backend_fn"))
    joined: list[int] = []
    page.on("request", lambda r: joined.append(r.post_data_json.get("trigger_id"))
            if "/queue/join" in r.url and r.post_data else None)
    page.goto(str(app_url))
    page.locator("#open-demo-style").click()  # at once, as an artist might: the loop began
    expect(page.locator("#style-summary")).to_contain_text("Demo: mauve stripes",  # here
                                                           timeout=30_000)
    page.wait_for_timeout(4000)  # a loop ran each listener again about every second
    changes = joined.count(selector)  # the page's first style, then the demo's
    assert listeners >= 5 and changes >= listeners  # every tab listens, and was heard
    # How often the style is announced while the page settles varies with load (CI: 23
    # for 7 listeners, three announcements); a loop never stops (old listener: 36 in 4 s,
    # then on): a quiet stretch must be silent.
    quiet = len(joined)
    page.wait_for_timeout(4000)
    late = joined[quiet:].count(selector)
    assert late == 0, f"the style keeps being announced: {late} refreshes in 4 s"
