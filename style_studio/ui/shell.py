"""The page: header, style selector, five tabs in the order of the flow, job status line."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from style_studio.studio import DemoLimits, Studio
from style_studio.visitors.registry import visitor_id

from .captions_tab import CaptionsTab
from .common import UIContext
from .consent_tab import ConsentTab
from .images_tab import ImagesTab
from .origin_guard import OriginPolicy, origin_middleware
from .playground_tab import PlaygroundTab
from .status import status_text
from .studios import OneStudio, StudioSource, VisitorStudios
from .styles_panel import STYLE_PARAM, StylesPanel, style_choices
from .training_tab import TrainingTab
from .verify_tab import VerifyTab
from .visitor_guard import visitor_middleware

# (label, id, class): each class builds its tab when constructed with a UIContext.
TABS = (
    ("Images", "images", ImagesTab),
    ("Captions", "captions", CaptionsTab),
    ("Consent & licence", "consent", ConsentTab),
    ("Training", "training", TrainingTab),
    ("Playground", "playground", PlaygroundTab),
    ("Verify", "verify", VerifyTab),
)
CSS_PATH = Path(__file__).resolve().parents[2] / "assets" / "style.css"


def build_ui(source: Studio | StudioSource) -> gr.Blocks:
    """Build the whole app; state lives in the studio, so any number of tabs can attach.
    `source` is the one studio at home, or the visitors' studios of a public demo."""
    if isinstance(source, Studio):
        source = OneStudio(source)
    with gr.Blocks(title="Style Studio", analytics_enabled=False) as demo:
        gr.Markdown("# Style Studio\nTrain a LoRA in your own style — and know where every "
                    "image came from.", elem_id="title")
        if source.limits is not None:
            gr.Markdown(space_banner(source.limits), elem_id="space-banner")
        panel = StylesPanel(source)
        status = gr.Markdown(status_text(source.page()), elem_id="job-status")
        with gr.Tabs(elem_id="tabs"):
            for label, tab_id, tab_class in TABS:
                with gr.Tab(label, id=tab_id, elem_id=f"tab-{tab_id}") as tab:
                    tab_class(UIContext(source, panel.selector, tab, status))
        timer = gr.Timer(1.0)
        timer.tick(lambda: status_text(source.current()), None, status,
                   show_progress="hidden")

        def on_load(request: gr.Request):
            """The page's own style (kept in its address, so a reload keeps it and other
            tabs are left alone); a brand-new page opens the last style chosen anywhere."""
            studio = source.current()
            for notice in studio.notices:
                gr.Warning(notice)
            asked = dict(request.query_params or {}).get(STYLE_PARAM)
            style = studio.styles.for_page(asked)
            return gr.update(choices=style_choices(studio),
                             value=style.id if style else None)

        demo.load(on_load, None, panel.selector)
    return demo


def space_banner(limits: DemoLimits) -> str:
    return ("**A public demo: everything here is temporary.** Your styles, pictures and "
            "trained LoRAs are yours alone (no other visitor can see or fetch them) and are "
            "deleted for good after "
            f"{limits.idle_expiry_s / 3600:g} hours without a visit. Consent recorded here "
            "by an anonymous visitor proves nothing: to train on work with a record that "
            "counts, run Style Studio on your own machine. Limits: "
            f"{limits.describe()}.")


def launch_options(source: Studio | StudioSource, host: str = "127.0.0.1") -> dict:
    """Safe defaults: local only, bounded uploads, the workspace never served, requests
    only from the app's own page (origin_guard), no monitoring dashboard. `ssr_mode` and
    `num_workers` stay off: a Node front proxy or static file workers would take uploads
    in processes the origin check does not run in. A public demo adds the visitor guard:
    a cookie per browser, and each visitor's files for that visitor only."""
    if isinstance(source, Studio):
        source = OneStudio(source)
    policy = OriginPolicy.for_launch(host, os.environ.get("SPACE_HOST"))
    middleware = [origin_middleware(policy)]
    if isinstance(source, VisitorStudios):
        middleware.append(visitor_middleware(source.visitors.served_dir, visitor_id))
    return {
        "share": False,
        "max_file_size": "20mb" if source.limits else "200mb",
        "blocked_paths": source.private_paths(),
        "css_paths": [CSS_PATH] if CSS_PATH.exists() else None,
        "show_error": True,
        "app_kwargs": {"middleware": middleware},
        "enable_monitoring": False,
        "ssr_mode": False,
        "num_workers": 0,
    }
