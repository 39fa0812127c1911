"""Shared fixtures: an isolated studio per test, offline hub, one torch thread."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest

from browser import app_url, app_workspace, chromium_browser, page  # noqa: F401
from style_studio.studio import Studio


@pytest.fixture
def studio(tmp_path):
    with Studio.open(tmp_path / "workspace") as opened:
        yield opened


@pytest.fixture
def style(studio):
    return studio.styles.create("Ink washes", trigger="inkwash", family="sd15")
