"""The `style-studio` command, run for real in a subprocess on a temporary workspace: the
flow from the shell alone, --json, exit codes and one-sentence errors, the workspace lock,
and the demo end to end (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import grimp
from training_helpers import shape_images, write_images

ROOT = Path(__file__).resolve().parents[1]
# tiny_config's values (training_helpers), as a config file: a few steps at 64 px.
TINY_TOML = """\
preset = "quick"
rank = 4
alpha = 4.0
learning_rate = 1e-2
max_steps = 6
batch_size = 2
resolution = 64
sample_every = 0
sample_prompts = ["shapestyle, a house"]
sample_seeds = [7]
sample_steps = 2
checkpoint_every = 2
keep_checkpoints = 2
lr_scheduler = "constant"
lr_warmup_steps = 0
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
            "STYLE_STUDIO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def _command(workspace: Path | None, *args: str) -> list[str]:
    where = ["--workspace", str(workspace)] if workspace else []
    return [sys.executable, "-m", "style_studio", *where, *args]


def cli(workspace: Path | None, *args: str, timeout: float = 300
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_command(workspace, *args), cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def ok_json(workspace: Path, *args: str) -> dict:
    done = cli(workspace, "--json", *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is True
    return data


def test_help_and_bad_arguments_are_quick_and_one_sentence():
    started = time.monotonic()
    helped = cli(None, "--help")
    assert helped.returncode == 0
    for word in ("serve", "style", "import", "caption", "consent", "train", "generate",
                 "runs", "export", "demo", "Exit codes", "130 cancelled"):
        assert word in helped.stdout
    bad = cli(None, "generate", "Shapes", "--scale", "big")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "style-studio generate: Argument --scale: invalid float value: 'big'. "
        "See 'style-studio generate --help'."]
    missing = cli(None, "consent")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "required" in missing.stderr and "Traceback" not in missing.stderr
    # the facade (torch, diffusers) is loaded only once a command runs
    assert time.monotonic() - started < 20


def in_process(capsys, monkeypatch, workspace: Path, *args: str) -> tuple[int, str, str]:
    """The command's `main` in this process: its exit code, stdout and stderr."""
    from style_studio.cli import main

    for name in ("TRANSFORMERS_VERBOSITY", "DIFFUSERS_VERBOSITY",
                 "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.setenv(name, os.environ.get(name, ""))
    capsys.readouterr()
    code = main(["--workspace", str(workspace), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_flow_from_the_shell_alone(tmp_path, capsys, monkeypatch):
    workspace = tmp_path / "ws"
    source = tmp_path / "pictures"
    for n, path in enumerate(write_images(source, shape_images(4))):
        path.with_suffix(".txt").write_text(f"a picture of shapes {n}\n")  # sidecars
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)

    created = ok_json(workspace, "style", "create", "Shapes", "--trigger", "shapestyle",
                      "--base", "tiny-sd15")
    style_id = created["style"]["id"]
    assert created["style"]["base_model"] == "tiny-sd15"

    imported = cli(workspace, "import", "Shapes", str(source))
    assert imported.returncode == 0, imported.stderr
    assert "Imported 4 image(s) into 'Shapes', 4 caption(s) from sidecars." in imported.stdout
    assert "Import into Shapes" in imported.stderr and "100%" in imported.stderr  # the bar

    approved = cli(workspace, "caption", "approve", style_id)
    assert approved.returncode == 0 and "Approved 4 caption(s)" in approved.stdout

    cleared = cli(workspace, "consent", "set", "shapes", "--own-work", "--creator",
                  "Ana Artist")
    assert cleared.returncode == 0, cleared.stderr
    assert "4 of 4 images can be trained on." in cleared.stdout

    trained = ok_json(workspace, "train", "Shapes", "--config", str(config))
    run = trained["run"]
    assert run["status"] == "done" and run["step"] == 6 and run["image_count"] == 4
    assert run["config"]["resolution"] == 64 and run["config"]["rank"] == 4
    assert {f["key"] for f in trained["files"]} >= {"lora", "card", "manifest"}

    made = ok_json(workspace, "generate", "Shapes", "--seed", "5", "--count", "2",
                   "--steps", "2", "--size", "64", "--scale", "0.8")
    assert [o["settings"]["seed"] for o in made["outputs"]] == [5, 6]
    assert all(Path(o["path"]).is_file() and o["settings"]["run_id"] == run["id"]
               and o["settings"]["lora_scale"] == 0.8 for o in made["outputs"])

    # The rest in this process (the command's `main`): no second start-up to pay for.
    code, out, err = in_process(capsys, monkeypatch, workspace, "export", run["id"],
                                str(tmp_path / "lora-out"))
    assert code == 0, err
    folder = tmp_path / "lora-out"
    assert (folder / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert (folder / "README.md").is_file() and (folder / "manifest.json").is_file()
    assert f"Exported run {run['id']}" in out

    code, out, err = in_process(capsys, monkeypatch, workspace, "--json", "train", "Brushes")
    message = "No style is called or numbered 'Brushes' (styles: 'Shapes')."
    assert code == 1 and err.strip().splitlines() == [f"style-studio: {message}"]
    assert json.loads(out) == {"ok": False, "error": message, "exit_code": 1}


def test_demo_end_to_end_and_a_second_process_is_refused(tmp_path, capsys, monkeypatch):
    workspace = tmp_path / "demo-ws"
    demo = subprocess.Popen(_command(workspace, "demo", "--steps", "2", "--seeds", "1"),
                            cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lock = workspace / ".studio.lock"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the demo holds the workspace
            if lock.is_file() and lock.read_text().strip() == str(demo.pid):
                break
            assert demo.poll() is None, demo.communicate()
            time.sleep(0.2)
        code, out, err = in_process(capsys, monkeypatch, workspace, "runs")
        assert code == 4 and out == ""
        assert err.strip().splitlines() == [
            f"style-studio: The workspace {workspace} is already open in another Style "
            f"Studio (process {demo.pid}). Close that one first, or start this one with "
            "--workspace and another folder."]
        out, err = demo.communicate(timeout=400)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, err
    assert "Traceback" not in err
    assert "Demo style 'Demo: mauve stripes'" in out and "20 of 20 images" in out
    assert "Trained run" in out and "2 steps on 20 images, base toy-sd15" in out
    lines = out.splitlines()
    assert [line[:2] for line in lines if line[:2] in ("A:", "B:")] == ["A:", "B:"]
    assert "Style distance to the training images (lower is closer): A (base)" in lines[-1]
    assert "Train the demo style" in err and "A/B: base vs LoRA" in err  # the bars


def test_the_cli_uses_only_the_facade_and_records_modules():
    graph = grimp.build_graph("style_studio")
    cli_modules = {"style_studio.cli", *graph.find_descendants("style_studio.cli")}
    serve_reaches = {"style_studio.ui.shell", "style_studio.ui.studios",
                     "style_studio.visitors.registry"}
    offenders = sorted(
        f"{importer} -> {imported}"
        for importer in cli_modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.startswith("style_studio") and imported not in cli_modules
        and imported != "style_studio.studio" and not imported.endswith(".records")
        and not (importer == "style_studio.cli.serve" and imported in serve_reaches)
        and imported not in ("style_studio", "style_studio.__init__"))
    assert offenders == []

    from style_studio import studio
    from style_studio.cli import common

    assert (common.HOME_ENV, common.DEFAULT_HOME) == (studio.HOME_ENV, studio.DEFAULT_HOME)
