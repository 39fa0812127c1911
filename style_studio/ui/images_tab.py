"""Images tab: upload, check and curate the image set."""

from __future__ import annotations

import gradio as gr

from .common import UIContext


def build(ctx: UIContext) -> None:
    gr.Markdown("### 1 · Images\nUpload the images this style is made of: files, a zip or a "
                "folder. Every file is checked, normalised and hashed.")
