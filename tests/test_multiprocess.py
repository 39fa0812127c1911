"""Data-parallel training with `accelerate launch` (issue 18): two CPU processes (gloo)
train the same LoRA as one process with the same global batch, only the main process
writes, a checkpoint resumes across process counts, and a batch the processes cannot
share is refused in one sentence.

Launcher: accelerate 1.15's `--cpu` launcher starts a single process unless it is given an
MPI hostfile, so the tests launch with `--multi_gpu` (torchrun) on a machine without CUDA
(`CUDA_VISIBLE_DEVICES=""`): each process then trains on the CPU with gloo.

Tolerance: the runs use SGD (momentum 0.9), and two LoRAs count as equal when the norm of
their difference is under 1e-5 of the LoRA's norm. Two processes add up the gradients of
their halves of a batch, a different float32 summation order from one process's (measured
here: 1.7e-8, while training moves LoRA B, which starts at zero, by 9e-3 and another seed
lands 1.4 away). AdamW is left out of this comparison on purpose: its first steps divide
each gradient element by its own size, so an element that is rounding noise around zero
becomes ±lr either way; measured with AdamW (lr 1e-2, this config otherwise), one process
on 1 vs 2 threads already differs by 2.5e-5, and 1 vs 2 processes by 5.8e-5, in a dozen
of the 68,736 elements.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import make_trainable_style

from style_studio.studio import Studio
from style_studio.training.export import DIFFUSERS_NAME

ROOT = Path(__file__).resolve().parents[1]
# About a minute on 2 cores (four launches of two processes); `make test` runs it.
pytestmark = pytest.mark.slow
TOLERANCE = 1e-5
# 3 images in one bucket, batch 2: each epoch has a batch of 2 and a batch of 1, so one
# process's share of a step is sometimes empty. Flips, caption dropout and a noise offset
# on: every random draw must be the same in every process.
CONFIG = """\
preset = "quick"
optimizer = "sgd"
rank = 4
alpha = 4.0
learning_rate = 0.1
max_steps = 4
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
flip = true
caption_dropout = 0.3
noise_offset = 0.05
"""
# Cancels the run (as the Cancel button does, through the job runner) once step N is done.
CANCEL_AT = """\
import sys
from style_studio.cli import main
from style_studio.training.trainer import Trainer

original = Trainer._log


def log(self, *args, **kwargs):
    original(self, *args, **kwargs)
    if self.step == int(sys.argv[1]) and self.processes.main:
        self.reporter._runner.cancel(self.reporter.job_id)


Trainer._log = log
sys.exit(main(sys.argv[2:]))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1",
            "STYLE_STUDIO_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(*target: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`accelerate launch` with two processes; `target`: `-m style_studio …` or a script."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *target]
    return subprocess.run(command, cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def in_process(*args: str) -> tuple[int, str]:
    """The command in this (single) process: exit code and stdout."""
    from style_studio.cli import main

    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in _env().items():
            if name != "PYTHONPATH":
                patch.setenv(name, value)
        with contextlib.redirect_stdout(out):
            code = main(list(args))
    return code, out.getvalue()


def run_of(stdout: str) -> dict:
    return json.loads(stdout)["run"]


def run_ids(workspace: Path) -> set[str]:
    with Studio.open(workspace) as studio:
        return {doc["id"] for doc in studio.store.all("runs")}


def only(ids: set[str]) -> str:
    assert len(ids) == 1, ids
    return next(iter(ids))


def lora(run: dict) -> dict[str, torch.Tensor]:
    return load_file(Path(run["run_dir"]) / "lora" / DIFFUSERS_NAME)


def distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """|a - b| / |a| over every tensor of the LoRA (Frobenius norms)."""
    assert a.keys() == b.keys()
    keys = sorted(a)
    diff = torch.cat([(a[k].double() - b[k].double()).flatten() for k in keys])
    return float(diff.norm() / torch.cat([a[k].double().flatten() for k in keys]).norm())


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A workspace with a trainable style, a config file, and a one-process reference."""
    tmp = tmp_path_factory.mktemp("multiprocess")
    workspace = tmp / "ws"
    with Studio.open(workspace) as studio:
        make_trainable_style(studio, tmp, count=3, name="Shapes")
    config = tmp / "tiny.toml"
    config.write_text(CONFIG)
    code, out = in_process("--workspace", str(workspace), "--json", "train", "Shapes",
                           "--config", str(config))
    assert code == 0, out
    return workspace, config, run_of(out)


def test_two_processes_train_the_same_lora_and_only_the_main_one_writes(shop):
    workspace, config, one = shop
    done = launch("-m", "style_studio", "--workspace", str(workspace), "--json", "train",
                  "Shapes", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    two = run_of(done.stdout)  # one JSON object: the other process printed nothing
    assert two["status"] == "done" and two["step"] == 4 and two["processes"] == 2
    assert one["processes"] == 1

    measured = distance(lora(one), lora(two))
    assert measured < TOLERANCE
    # The tolerance means something: training moved the LoRA far more than that (LoRA B
    # starts at zero), and another seed lands far away.
    moved = distance(lora(one), {k: v if "lora_B" not in k else torch.zeros_like(v)
                                 for k, v in lora(one).items()})
    assert moved > 100 * TOLERANCE
    code, out = in_process("--workspace", str(workspace), "--json", "train", "Shapes",
                           "--config", str(config), "--set", "seed=7")
    assert code == 0, out
    other_seed = distance(lora(one), lora(run_of(out)))
    assert other_seed > 100 * TOLERANCE
    print(f"\n1 vs 2 processes: {measured:.2e}; LoRA B moved from init: {moved:.2e}; "
          f"another seed: {other_seed:.2e} (tolerance {TOLERANCE:.0e})")

    # Only the main process wrote: one run folder per run, one job per run, rows once.
    with Studio.open(workspace) as studio:
        runs = studio.store.all("runs")
        jobs = studio.store.find("jobs", kind="training")
        style_dir = studio.workspace.style_dir(runs[0]["style_id"])
        assert len(jobs) == len(runs)
        assert sorted(p.name for p in (style_dir / "runs").iterdir()) == sorted(
            r["id"] for r in runs)
        assert [m["step"] for m in studio.training.metrics(two["id"])] == [1, 2, 3, 4]
        job = studio.jobs.get(studio.training.get_run(two["id"]).job_id)
        assert job.status == "done" and len(job.log) == len(set(job.log))
    outcome = json.loads((Path(two["run_dir"]) / "outcome.json").read_text())
    assert outcome["processes"] == 2
    assert "- Processes: 2" in (Path(two["run_dir"]) / "provenance.md").read_text()
    listed = in_process("--workspace", str(workspace), "runs")[1]
    assert next(line for line in listed.splitlines() if two["id"] in line).endswith(
        "2 processes")


def test_a_checkpoint_resumes_across_process_counts(shop, tmp_path):
    workspace, config, one = shop
    script = tmp_path / "cancel_at.py"
    script.write_text(CANCEL_AT)
    # two processes, cancelled after step 2 (a checkpoint), resumed by one
    before = run_ids(workspace)
    stopped = launch(str(script), "2", "--workspace", str(workspace), "train", "Shapes",
                     "--config", str(config), "-q")
    assert stopped.returncode != 0
    assert "style-studio: Cancelled at step 2; a checkpoint was saved" in stopped.stderr
    run_id = only(run_ids(workspace) - before)
    with Studio.open(workspace) as studio:
        run = studio.training.get_run(run_id)
        assert run.status == "cancelled" and run.step == 2 and run.processes == 2
    code, out = in_process("--workspace", str(workspace), "--json", "train", "--resume",
                           run.id)
    assert code == 0, out
    resumed = run_of(out)
    assert resumed["step"] == 4 and resumed["processes"] == 1
    two_then_one = distance(lora(one), lora(resumed))
    assert two_then_one < TOLERANCE

    # and the other way: one process cancelled after step 2, resumed by two
    from style_studio.training.trainer import Trainer

    original = Trainer._log

    def log(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.step == 2:
            self.reporter._runner.cancel(self.reporter.job_id)

    before = run_ids(workspace)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_log", log)
        code, out = in_process("--workspace", str(workspace), "train", "Shapes", "--config",
                               str(config), "-q")
    assert code == 130
    run_id = only(run_ids(workspace) - before)
    with Studio.open(workspace) as studio:
        run = studio.training.get_run(run_id)
        assert run.status == "cancelled" and run.step == 2
    done = launch("-m", "style_studio", "--workspace", str(workspace), "--json", "train",
                  "--resume", run.id)
    assert done.returncode == 0, done.stderr
    resumed = run_of(done.stdout)
    assert resumed["step"] == 4 and resumed["processes"] == 2
    one_then_two = distance(lora(one), lora(resumed))
    assert one_then_two < TOLERANCE
    print(f"\nresumed 2 -> 1 processes: {two_then_one:.2e}; 1 -> 2: {one_then_two:.2e}")
    with Studio.open(workspace) as studio:
        log_lines = studio.jobs.get(studio.training.get_run(run.id).job_id).log
    assert sum("Resumed from the checkpoint at step 2" in line for line in log_lines) == 1


def test_a_batch_the_processes_cannot_share_is_refused_in_one_sentence(shop):
    workspace, config, _ = shop
    with Studio.open(workspace) as studio:
        before = len(studio.store.all("runs"))
    done = launch("-m", "style_studio", "--workspace", str(workspace), "train", "Shapes",
                  "--config", str(config), "--set", "batch_size=3")
    assert done.returncode != 0
    sentence = ("style-studio: The batch size (3) must divide by the number of processes "
                "(2): each process trains an equal share of every batch, so choose a "
                "multiple of 2 or launch fewer processes.")
    assert done.stderr.count(sentence) == 1, done.stderr
    assert "Unexpected error" not in done.stderr
    with Studio.open(workspace) as studio:
        assert len(studio.store.all("runs")) == before
