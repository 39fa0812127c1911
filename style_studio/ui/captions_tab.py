"""Captions tab: auto-caption, edit and approve every caption."""

from __future__ import annotations

import gradio as gr

from .common import UIContext


def build(ctx: UIContext) -> None:
    gr.Markdown("### 2 · Captions\nDescribe every image in your own words; only approved "
                "captions are trained on.")
