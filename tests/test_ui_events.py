"""The page's event wiring, read from the config Gradio sends the browser.

Gradio's front end (6.31, `Blocks-*.js`, `DependencyManager.dispatch`) treats a listener
whose `trigger_mode` is "always_last" and that is still running when its event fires
again as *deferred*; when it finishes it dispatches the original event again — to every
listener of that event, not to itself. Two such listeners on one event, overlapping, re-
defer each other for ever: the endless style refreshes once seen here (every tab's
refresh about once a second while the page stayed open, the Consent list under its
loading overlay for minutes on a loaded machine). Change events default to "always_last".
The rule below follows from that code: an event may have at most one backend listener
that re-runs "always_last".
"""

from __future__ import annotations

from collections import defaultdict

import gradio as gr

from style_studio.ui.common import on_style_change
from style_studio.ui.shell import build_ui


def events_that_can_loop(config: dict) -> dict[tuple[int, str], list[str]]:
    """Events with two or more backend listeners in "always_last" mode, with their names."""
    listeners: dict[tuple[int, str], list[str]] = defaultdict(list)
    for dep in config["dependencies"]:
        if dep.get("backend_fn") and dep.get("trigger_mode") == "always_last":
            for target, event in dep["targets"]:
                listeners[(target, event)].append(str(dep.get("api_name")))
    return {event: names for event, names in listeners.items() if len(names) > 1}


def test_the_rule_finds_two_default_change_listeners():
    """Gradio's own default for change events is the loop's precondition, so the check
    above must flag plain `.change` listeners — and pass the helper's."""
    with gr.Blocks() as plain:
        box = gr.Dropdown(choices=["a", "b"])
        out = gr.Textbox()
        box.change(lambda v: v, box, out)
        box.change(lambda v: v, box, out)
    assert len(events_that_can_loop(plain.get_config_file())) == 1
    with gr.Blocks() as helped:
        box = gr.Dropdown(choices=["a", "b"])
        out = gr.Textbox()
        on_style_change(box, lambda v: v, box, out)
        on_style_change(box, lambda v: v, box, out)
    assert events_that_can_loop(helped.get_config_file()) == {}


def test_no_event_of_the_page_can_refresh_for_ever(studio):
    config = build_ui(studio).get_config_file()
    selector = next(c["id"] for c in config["components"]
                    if c.get("props", {}).get("elem_id") == "style-selector")
    style_listeners = [d for d in config["dependencies"] if d.get("backend_fn")
                       and [selector, "change"] in [list(t) for t in d["targets"]]]
    assert len(style_listeners) >= 5  # every tab listens to the style: the rule matters
    assert events_that_can_loop(config) == {}
