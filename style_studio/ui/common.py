"""What every tab shares: the context it is built with and error handling."""

from __future__ import annotations

import functools
import logging
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import gradio as gr
from gradio.utils import NamedString
from gradio_client.utils import is_valid_file

from style_studio.studio import DemoLimits, Studio, StudioError

from .studios import StudioSource

log = logging.getLogger("style_studio.ui")
F = TypeVar("F", bound=Callable[..., Any])


class UsesStudio:
    """A part of the page that talks to the studio of the request in hand: the one studio
    at home, the visitor's own on a public demo (see `studios.py`). Never keep a studio:
    ask `self.studio` inside each handler."""

    source: StudioSource

    @property
    def studio(self) -> Studio:
        return self.source.current()

    @property
    def limits(self) -> DemoLimits | None:
        """The public demo's limits, or None on an artist's own install."""
        return self.source.limits


@dataclass
class UIContext(UsesStudio):
    """Handed to each tab's constructor: where the studio comes from and the shared
    components.

    `style` is the style selector (its value is the current style id, or None);
    `tab` is the tab being built, so it can refresh itself when selected.
    """

    source: StudioSource
    style: gr.Dropdown
    tab: gr.Tab
    status: gr.Markdown


class Tab(UsesStudio):
    """One tab of the page, in the one pattern every tab follows: constructed with its
    context, it lays out its components (`_layout`), then wires their events to its named
    handler methods (`_wire`). State lives in the studio, never in the tab."""

    def __init__(self, ctx: UIContext):
        self.ctx = ctx
        self.source = ctx.source
        self._layout()
        self._wire()

    def _layout(self) -> None:
        raise NotImplementedError

    def _wire(self) -> None:
        raise NotImplementedError


def guard(fn: F) -> F:
    """Turn StudioError into a readable gr.Error; never show a traceback.

    A refusal the artist can act on (a model not downloaded, a bad value) is one plain
    line in the terminal, not a traceback: Gradio prints one for every gr.Error unless
    told not to. Only an unexpected error logs its traceback, once.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StudioError as exc:
            log.warning("%s: %s", type(exc).__name__, exc)
            raise gr.Error(str(exc), print_exception=False) from exc
        except gr.Error as exc:
            exc.print_exception = False  # words for the artist, already on the page
            raise
        except Exception as exc:
            log.exception("Unexpected error in %s", fn.__name__)
            raise gr.Error(
                f"Something went wrong ({type(exc).__name__}: {exc}). Nothing was lost; "
                "the details are in the terminal where Style Studio runs.",
                print_exception=False,
            ) from exc

    return wrapper  # type: ignore[return-value]


def on_style_change(style: gr.Dropdown, fn: Callable[..., Any] | None, inputs: Any,
                    outputs: Any, **kwargs: Any) -> Any:
    """Listen to the style selector's change event, as every tab does.

    Each listener runs once per change (`trigger_mode="multiple"`), never Gradio's default
    for change events ("always_last"): when several always-last listeners share one event
    and one is still running as the event fires again, Gradio 6 (checked at 6.31) re-fires
    the *whole event* once the deferred listener finishes, which re-defers another, and
    so on for ever — every tab refreshing about once a second for as long as the page is
    open. The app setting the style just after the page's own first announcement was
    enough. tests/test_ui_events.py keeps the rule for every event of the page.
    """
    return style.change(fn, inputs, outputs, trigger_mode="multiple", **kwargs)


def escape_md(text: Any) -> str:
    """Escape text from files, models or the artist before it goes into Markdown."""
    out = str(text if text is not None else "")
    for char in "\\`*_{}[]<>#|":
        out = out.replace(char, "\\" + char)
    return out


def job_state_markdown(job: Any, doing: str, queued_for: str, failed: str) -> str | None:
    """The line a tab shows while its job waits, runs or has failed; None once it is done.

    `doing` names the work ("Importing"), `queued_for` what a queued job waits for,
    `failed` the words for a failure ("The import failed").
    """
    if job.status in ("queued", "running"):
        waiting = f" (waiting for {queued_for})" if job.status == "queued" else ""
        return f"**{doing}{waiting}… {job.progress:.0%}** — {escape_md(job.message)}"
    if job.status == "failed":
        return f"✗ **{failed}:** {escape_md(job.error)}"
    return None


def find_block(root: Any, elem_id: str) -> Any | None:
    """A component another tab built, found by its elem_id under `root` (the tabs): how
    one tab links into another (the Playground opens a run's page in the Training tab)
    without the shell wiring each pair by hand."""
    stack = [root]
    while stack:
        block = stack.pop()
        if getattr(block, "elem_id", None) == elem_id:
            return block
        stack.extend(getattr(block, "children", None) or [])
    return None


def need_style(style_id: str | None) -> str:
    """Most actions need a style; say so plainly when none is chosen."""
    if not style_id:
        raise gr.Error("Choose or create a style first (top of the page).",
                       print_exception=False)
    return style_id


def upload_file(**kwargs: Any) -> gr.File:
    """gr.File that hands on the uploaded path without leaving an empty file behind.

    Gradio 6.31's `File` opens a `NamedTemporaryFile` in its cache for every uploaded
    file in "filepath" mode and never uses it (components/file.py): one 0-byte file per
    upload stayed in the workspace's cache. The override is bound to the instance, since
    subclassing a component makes Gradio write a .pyi stub beside this module.
    """
    component = gr.File(**kwargs)
    if component.type == "filepath":
        component._process_single_file = types.MethodType(_uploaded_path, component)
    return component


def _uploaded_path(self: gr.File, f: Any) -> NamedString:
    if self.file_types and not is_valid_file(f.path, self.file_types):
        raise gr.Error("This kind of file is not accepted here. Please upload one of: "
                       + ", ".join(self.file_types) + ".")
    return NamedString(f.path)
