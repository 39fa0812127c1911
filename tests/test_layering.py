"""The core stays free of gradio, and the app launches with safe defaults."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_importing_the_core_does_not_import_gradio():
    modules = [p.stem for p in (ROOT / "style_studio").glob("*.py") if p.stem != "__init__"]
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module('style_studio.' + name)\n"
        "print('gradio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_core_module_mentions_gradio_imports():
    offenders = [p.name for p in (ROOT / "style_studio").glob("*.py")
                 if "import gradio" in p.read_text() or "from gradio" in p.read_text()]
    assert offenders == []


def test_launch_defaults_are_local_and_do_not_serve_the_workspace(studio):
    from style_studio.ui.shell import launch_options

    options = launch_options(studio)
    assert options["share"] is False
    assert options["max_file_size"]
    assert str(studio.workspace.root / "studio.json") in options["blocked_paths"]
    assert str(studio.workspace.styles_root) in options["blocked_paths"]
    # requests only from the app's own page; no monitoring; nothing bypasses the check
    assert options["app_kwargs"]["middleware"] and options["enable_monitoring"] is False
    assert options["ssr_mode"] is False and options["num_workers"] == 0


def test_flags_default_to_localhost():
    sys.path.insert(0, str(ROOT))
    import app

    args = app.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    args = app.parse_args(["--host", "0.0.0.0", "--port", "9000", "--workspace", "w",
                           "--base-model", "tiny-sd15"])
    assert (args.host, args.port, args.workspace, args.base_model) == (
        "0.0.0.0", 9000, "w", "tiny-sd15")
