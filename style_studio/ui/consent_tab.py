"""Consent & licence tab: who made each image and whether it may be trained on."""

from __future__ import annotations

import gradio as gr

from .common import UIContext


def build(ctx: UIContext) -> None:
    gr.Markdown("### 3 · Consent & licence\nRecord the creator, licence and permission of "
                "every image; only cleared images can be trained on.")
