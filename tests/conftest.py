"""Shared fixtures: an isolated studio per test, an empty Hugging Face cache, one torch thread.

No test may depend on what this machine has downloaded: before anything imports
huggingface_hub, HF_HOME points at an empty temporary folder (inherited by the app the
browser tests launch), and every test gets a fresh empty cache of its own.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_HF_HOME = tempfile.mkdtemp(prefix="style-studio-hf-home-")
atexit.register(shutil.rmtree, _HF_HOME, ignore_errors=True)
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_CACHE"] = str(Path(_HF_HOME) / "hub")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import huggingface_hub  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from browser import app_url, app_workspace, chromium_browser, page  # noqa: E402, F401
from style_studio.studio import Studio  # noqa: E402

torch.set_num_threads(1)  # for module-scoped fixtures, set up before the fixture below


@pytest.fixture(autouse=True)
def test_machine(tmp_path_factory, monkeypatch):
    """Every test: an empty Hugging Face cache of its own and one torch thread (2 cores,
    often shared; a test that wants more sets it and the next test gets 1 again)."""
    home = tmp_path_factory.mktemp("hf-home")
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HOME", str(home))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    torch.set_num_threads(1)
    yield


@pytest.fixture
def studio(tmp_path):
    with Studio.open(tmp_path / "workspace") as opened:
        yield opened


@pytest.fixture
def style(studio):
    return studio.styles.create("Ink washes", trigger="inkwash", family="sd15")


def pytest_collection_modifyitems(config, items):
    """For `make test`'s two pytest-xdist processes (`--dist loadgroup`): the browser tests
    run one at a time in one process (each drives an app and a Chromium, and two at once
    starve a 2-core machine), and every other file stays whole in one process (its module
    fixtures are built once)."""
    for item in items:
        group = "browser" if item.get_closest_marker("browser") else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failure at
    teardown (browser.py saves the page and the app's log then)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
