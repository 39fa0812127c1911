"""The shape of the code: import-linter contracts hold (and fail when broken), the UI goes
through the facade, the core never loads gradio, and the app launches with safe defaults."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The facade, and in Space mode the facade's keeper of one studio per visitor.
FACADES = {"style_studio.studio", "style_studio.visitors.registry"}


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--config",
                           str(cwd / "pyproject.toml")],
                          cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"})


def test_the_import_contracts_hold():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("base/store.py", "import gradio", "Only the UI imports gradio"),
    ("base/jobs.py", "import torch", "base/ and consent/ never import torch"),
    ("consent/gate.py", "from style_studio.training import service", "Layers"),
    ("training/service.py", "from style_studio import studio", "Layers"),
])
def test_a_broken_contract_fails(tmp_path, module, line, contract):
    """The contracts are not decoration: one bad import in a copy of the code breaks them."""
    shutil.copytree(ROOT / "style_studio", tmp_path / "style_studio",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "style_studio" / module
    target.write_text(target.read_text() + f"\n{line}  # broken on purpose\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[1]
    assert contract in broken
    assert "style_studio." + module.removesuffix(".py").replace("/", ".") in broken


def test_the_ui_imports_only_the_facade_and_records_modules():
    graph = grimp.build_graph("style_studio")
    ui = {"style_studio.ui", *graph.find_descendants("style_studio.ui")}
    offenders = sorted(
        f"{importer} -> {imported}"
        for importer in ui
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.startswith("style_studio") and imported not in ui
        and imported not in FACADES and not imported.endswith(".records"))
    assert offenders == []


def test_importing_the_core_does_not_import_gradio():
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for p in (ROOT / "style_studio").rglob("*.py") if "ui" not in p.parts)
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('gradio' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


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
