"""Playground tab: generate with a trained LoRA and compare it with the base model."""

from __future__ import annotations

import gradio as gr

from .common import UIContext


def build(ctx: UIContext) -> None:
    gr.Markdown("### 5 · Playground\nTry a trained LoRA; every output carries its provenance.")
