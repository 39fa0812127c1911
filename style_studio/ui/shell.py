"""The page: header, style selector, five tabs in the order of the flow, job status line."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from style_studio.studio import Studio

from .captions_tab import CaptionsTab
from .common import UIContext
from .consent_tab import ConsentTab
from .images_tab import ImagesTab
from .origin_guard import OriginPolicy, origin_middleware
from .playground_tab import PlaygroundTab
from .status import status_text
from .styles_panel import STYLE_PARAM, StylesPanel, style_choices
from .training_tab import TrainingTab

# (label, id, class): each class builds its tab when constructed with a UIContext.
TABS = (
    ("Images", "images", ImagesTab),
    ("Captions", "captions", CaptionsTab),
    ("Consent & licence", "consent", ConsentTab),
    ("Training", "training", TrainingTab),
    ("Playground", "playground", PlaygroundTab),
)
CSS_PATH = Path(__file__).resolve().parents[2] / "assets" / "style.css"


def build_ui(studio: Studio) -> gr.Blocks:
    """Build the whole app; state lives in the studio, so any number of tabs can attach."""
    with gr.Blocks(title="Style Studio", analytics_enabled=False) as demo:
        gr.Markdown("# Style Studio\nTrain a LoRA in your own style — and know where every "
                    "image came from.", elem_id="title")
        panel = StylesPanel(studio)
        status = gr.Markdown(status_text(studio), elem_id="job-status")
        with gr.Tabs(elem_id="tabs"):
            for label, tab_id, tab_class in TABS:
                with gr.Tab(label, id=tab_id, elem_id=f"tab-{tab_id}") as tab:
                    tab_class(UIContext(studio, panel.selector, tab, status))
        timer = gr.Timer(1.0)
        timer.tick(lambda: status_text(studio), None, status, show_progress="hidden")

        def on_load(request: gr.Request):
            """The page's own style (kept in its address, so a reload keeps it and other
            tabs are left alone); a brand-new page opens the last style chosen anywhere."""
            for notice in studio.notices:
                gr.Warning(notice)
            asked = dict(request.query_params or {}).get(STYLE_PARAM)
            style = studio.styles.for_page(asked)
            return gr.update(choices=style_choices(studio),
                             value=style.id if style else None)

        demo.load(on_load, None, panel.selector)
    return demo


def launch_options(studio: Studio, host: str = "127.0.0.1") -> dict:
    """Safe defaults: local only, bounded uploads, the workspace never served, requests
    only from the app's own page (origin_guard), no monitoring dashboard. `ssr_mode` and
    `num_workers` stay off: a Node front proxy or static file workers would take uploads
    in processes the origin check does not run in."""
    policy = OriginPolicy.for_launch(host, os.environ.get("SPACE_HOST"))
    return {
        "share": False,
        "max_file_size": "200mb",
        "blocked_paths": [str(studio.workspace.root / "studio.json"),
                          str(studio.workspace.styles_root)],
        "css_paths": [CSS_PATH] if CSS_PATH.exists() else None,
        "show_error": True,
        "app_kwargs": {"middleware": [origin_middleware(policy)]},
        "enable_monitoring": False,
        "ssr_mode": False,
        "num_workers": 0,
    }
