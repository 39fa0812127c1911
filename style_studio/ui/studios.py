"""Which studio a request talks to: the one studio at home, the visitor's own in Space mode.

Tabs never keep a `Studio` of their own: they ask `UIContext.studio`, which asks the
source here. Gradio puts the request being handled in a context variable while a handler
runs, so the visitor is found from the request's cookie without threading a visitor id
through every event's inputs.
"""

from __future__ import annotations

from typing import Protocol

import gradio as gr
from gradio.context import LocalContext

from style_studio.studio import DemoLimits, Studio
from style_studio.visitors.registry import Visitors, visitor_id

from .visitor_guard import COOKIE, visitor_secret


class StudioSource(Protocol):
    limits: DemoLimits | None

    def current(self) -> Studio: ...

    def page(self) -> Studio: ...

    def private_paths(self) -> list[str]: ...


class OneStudio:
    """An artist's own install: every request talks to the one studio."""

    def __init__(self, studio: Studio):
        self.studio = studio
        self.limits = studio.config.limits

    def current(self) -> Studio:
        return self.studio

    def page(self) -> Studio:
        return self.studio

    def private_paths(self) -> list[str]:
        """Never served: the database, the styles' folders and the signing keys."""
        return self.studio.private_paths()


class VisitorStudios:
    """A public demo: every request talks to its visitor's studio."""

    def __init__(self, visitors: Visitors):
        self.visitors = visitors
        self.limits = visitors.limits

    def current(self) -> Studio:
        request = LocalContext.request.get(None)
        if request is None:  # building the page, before any visitor
            return self.visitors.page_studio()
        cookies = getattr(request, "cookies", None) or {}
        raw = cookies.get(COOKIE) if hasattr(cookies, "get") else None
        secret = visitor_secret(f"{COOKIE}={raw}") if raw else None
        if secret is None:
            raise gr.Error("This page lost its visitor cookie: allow cookies for this site "
                           "and reload the page.", print_exception=False)
        return self.visitors.studio(visitor_id(secret))

    def page(self) -> Studio:
        return self.visitors.page_studio()

    def private_paths(self) -> list[str]:
        """Never served: the visitors' workspaces and the shared models."""
        return [str(self.visitors.folder), str(self.visitors.models_dir)]
