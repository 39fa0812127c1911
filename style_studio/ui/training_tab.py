"""Training tab: train a LoRA on the cleared, captioned images."""

from __future__ import annotations

import gradio as gr

from .common import UIContext


def build(ctx: UIContext) -> None:
    gr.Markdown("### 4 · Training\nTrain a LoRA on the images the consent gate allows.")
