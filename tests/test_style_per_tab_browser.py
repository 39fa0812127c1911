"""Each browser tab keeps its own style (issue 13): the choice lives in the page's address,
so a reload keeps it and another tab is never switched; the store only remembers the last
choice as the default for a brand-new tab."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser import screenshot
from style_studio.studio import Studio

pytestmark = pytest.mark.browser


@pytest.fixture
def app_workspace(tmp_path):
    root = tmp_path / "workspace"
    with Studio.open(root) as studio:
        studio.styles.create("Ink washes", trigger="inkwash")
        studio.styles.create("Oil nights", trigger="oilnight")  # created last: the default
    return root


def choose_style(page, name: str) -> None:
    page.locator("#style-selector input").click()
    page.get_by_role("option", name=name, exact=True).click()
    expect(page.locator("#style-summary")).to_contain_text(name, timeout=15_000)


def expect_style(page, name: str) -> None:
    expect(page.locator("#style-summary")).to_contain_text(name, timeout=15_000)
    expect(page.locator("#style-selector input")).to_have_value(name)


def test_two_tabs_keep_their_own_style_across_reloads(app_url, page):
    first = page
    first.goto(str(app_url))
    expect_style(first, "Oil nights")
    first.get_by_role("tab", name="Playground").click()
    prompt = first.locator("#pg-prompt textarea")
    # The Playground is the last to follow a style change: once its default prompt is
    # there, the page has settled (on 2 busy cores that takes a few seconds).
    expect(prompt).to_have_value(re.compile(r"^oilnight\b"), timeout=20_000)
    choose_style(first, "Ink washes")
    expect(first).to_have_url(re.compile(r"[?&]style=\w+"))
    ink_url = first.url
    expect(prompt).to_have_value(re.compile(r"^inkwash\b"), timeout=20_000)
    prompt.fill("inkwash, a heron at dawn, my own words")

    second = first.context.new_page()
    second.goto(str(app_url))
    expect_style(second, "Ink washes")  # a brand-new tab opens the last style chosen
    choose_style(second, "Oil nights")
    expect(second).to_have_url(re.compile(r"[?&]style=\w+"))
    assert second.url != ink_url

    # The first tab was not switched, and its Playground kept the prompt and run.
    second.wait_for_timeout(1500)
    expect_style(first, "Ink washes")
    expect(prompt).to_have_value("inkwash, a heron at dawn, my own words")
    assert first.url == ink_url

    first.reload()
    expect_style(first, "Ink washes")
    second.reload()
    expect_style(second, "Oil nights")
    first.reload()
    expect_style(first, "Ink washes")
    screenshot(first, "style-per-tab-first")
    screenshot(second, "style-per-tab-second")

    third = first.context.new_page()  # no style in its address: the last one chosen
    third.goto(str(app_url))
    expect_style(third, "Oil nights")

    # An address naming a style that is gone falls back to the default.
    third.goto(str(app_url) + "?style=no-such-style")
    expect_style(third, "Oil nights")
