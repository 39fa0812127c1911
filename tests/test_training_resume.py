"""Never lose a run: cancel and resume, crash and resume, NaN, out of memory, full disk,
and a gate that the trainer itself asks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from training_helpers import make_trainable_style, tiny_config

import style_studio.training.checkpoints as checkpoints_module
from style_studio.base.errors import GateRefused
from style_studio.consent.records import ConsentRecord
from style_studio.studio import Studio
from style_studio.training.export import DIFFUSERS_NAME
from style_studio.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
STEPS = 8


def config(**overrides):
    settings = dict(max_steps=STEPS, checkpoint_every=3, sample_every=4, flip=True,
                    caption_dropout=0.3, noise_offset=0.05, lr_scheduler="cosine",
                    lr_warmup_steps=2)
    return tiny_config(**{**settings, **overrides})


def train(studio, style_id, cfg=None, timeout=300):
    job = studio.training.start(style_id, cfg or config(), base_model="tiny-sd15")
    return studio.jobs.wait(job.id, timeout)


def final_lora(run) -> dict[str, torch.Tensor]:
    return load_file(run.run_dir / "lora" / DIFFUSERS_NAME)


def assert_same_lora(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=1e-5)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A studio with a trainable style and one uninterrupted reference run."""
    tmp = tmp_path_factory.mktemp("resume")
    with Studio.open(tmp / "workspace") as studio:
        style, ids = make_trainable_style(studio, tmp, count=4, sizes=[(96, 96), (128, 64)])
        job = train(studio, style.id)
        assert job.status == "done", job.error
        reference = studio.training.get_run(job.result["run_id"])
        yield studio, style, ids, final_lora(reference), reference


def cancel_at(monkeypatch, studio, step: int) -> None:
    """Press Cancel (through the service) right after `step` completes."""
    original = Trainer._log

    def log(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if self.step == step:
            studio.training.cancel(self.spec.run_id)

    monkeypatch.setattr(Trainer, "_log", log)


def test_cancel_saves_and_resume_equals_an_uninterrupted_run(setup, monkeypatch):
    studio, style, _, reference, reference_run = setup
    cancel_at(monkeypatch, studio, 5)
    job = train(studio, style.id)
    monkeypatch.undo()
    run = studio.training.get_run(job.params["run_id"])
    assert job.status == "cancelled" and "step 5" in job.message
    assert run.status == "cancelled" and run.step == 5 and run.resumable
    assert [c.step for c in studio.training.checkpoints(run.id)] == [5, 3]
    assert not (run.run_dir / "lora").exists()

    job = studio.jobs.wait(studio.training.resume(run.id).id, 300)
    assert job.status == "done", job.error
    run = studio.training.get_run(run.id)
    assert run.status == "done" and run.step == STEPS
    assert_same_lora(final_lora(run), reference)
    steps = [m["step"] for m in studio.training.metrics(run.id)]
    assert steps == list(range(1, STEPS + 1))
    same_losses = [m["loss"] for m in studio.training.metrics(reference_run.id)]
    assert [m["loss"] for m in studio.training.metrics(run.id)] == pytest.approx(same_losses)
    assert run.energy["wall_s"] > 0


def test_nan_loss_fails_the_run_and_exports_nothing(setup, monkeypatch):
    studio, style, *_ = setup
    original = Trainer.denoising_loss

    def poisoned(self, pred, target, timesteps):
        loss = original(self, pred, target, timesteps)
        return loss * float("nan") if self.step == 4 else loss

    monkeypatch.setattr(Trainer, "denoising_loss", poisoned)
    job = train(studio, style.id)
    run = studio.training.get_run(job.params["run_id"])
    assert job.status == "failed" and run.status == "failed"
    assert "step 5" in run.error and "nan" in run.error.lower()
    assert "learning rate" in run.error and "Nothing from this state was saved" in run.error
    assert not (run.run_dir / "lora").exists()
    assert [c.step for c in studio.training.checkpoints(run.id)] == [3]
    assert max(m["step"] for m in studio.training.metrics(run.id)) == 4


def test_out_of_memory_fails_clearly_and_the_worker_keeps_serving(setup, monkeypatch):
    studio, style, *_ = setup
    original = Trainer.train_step

    def oom(self, step):
        if step == 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", oom)
    job = train(studio, style.id)
    run = studio.training.get_run(job.params["run_id"])
    assert job.status == "failed" and run.status == "failed"
    assert "ran out of memory at step 3" in run.error
    assert "batch size (now 2)" in run.error and "gradient checkpointing" in run.error
    monkeypatch.undo()
    job = train(studio, style.id, config(max_steps=1, checkpoint_every=0, sample_every=0))
    assert job.status == "done", job.error


def test_a_failed_save_keeps_the_previous_checkpoint(setup, monkeypatch):
    studio, style, _, reference, _ = setup
    original = checkpoints_module.atomic_write_bytes

    def full_disk(path, data):
        if ".step-000006." in str(path):
            raise OSError(28, "No space left on device")
        return original(path, data)

    monkeypatch.setattr(checkpoints_module, "atomic_write_bytes", full_disk)
    job = train(studio, style.id)
    monkeypatch.undo()
    run = studio.training.get_run(job.params["run_id"])
    assert run.status == "failed"
    assert "Could not save the checkpoint at step 6" in run.error and "disk space" in run.error
    folder = run.run_dir / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["step-000003"]  # no temp left
    assert load_file(folder / "step-000003" / DIFFUSERS_NAME)  # still readable
    job = studio.jobs.wait(studio.training.resume(run.id).id, 300)
    assert job.status == "done", job.error
    assert_same_lora(final_lora(studio.training.get_run(run.id)), reference)


CRASH_SCRIPT = """
import json, sys, time, torch
torch.set_num_threads(1)
from style_studio.studio import Studio
from style_studio.training.trainer import Trainer
from style_studio.training.config import TrainConfig
original = Trainer._log
def log(self, *args, **kwargs):
    original(self, *args, **kwargs)
    if self.step == 5:
        print("READY", flush=True)
        time.sleep(600)  # the parent kills us here, mid-run
Trainer._log = log
studio = Studio.open(sys.argv[1])
job = studio.training.start(sys.argv[2], TrainConfig.from_dict(json.loads(sys.argv[3])),
                            base_model="tiny-sd15")
studio.jobs.wait(job.id, 600)
"""


def test_an_app_killed_mid_run_marks_it_interrupted_and_it_resumes(tmp_path):
    workspace = tmp_path / "workspace"
    with Studio.open(workspace) as studio:
        style, _ = make_trainable_style(studio, tmp_path, count=4, sizes=[(96, 96), (128, 64)])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-c", CRASH_SCRIPT, str(workspace), style.id,
         json.dumps(config().to_dict())], env=env, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)
    try:
        ready = threading.Event()
        threading.Thread(target=lambda: ready.set() if "READY" in process.stdout.readline()
                         else None, daemon=True).start()
        assert ready.wait(240), "the training subprocess never reached step 5"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    with Studio.open(workspace) as studio:
        run = studio.training.runs(style.id)[0]
        assert run.status == "interrupted" and run.resumable
        assert studio.jobs.get(run.job_id).status == "interrupted"
        assert [c.step for c in studio.training.checkpoints(run.id)] == [3]
        job = studio.jobs.wait(studio.training.resume(run.id).id, 300)
        assert job.status == "done", job.error
        resumed = studio.training.get_run(run.id)
        assert resumed.step == STEPS
        assert [m["step"] for m in studio.training.metrics(run.id)] == list(range(1, STEPS + 1))
        fresh = train(studio, style.id)
        assert fresh.status == "done", fresh.error
        assert_same_lora(final_lora(resumed), final_lora(
            studio.training.get_run(fresh.result["run_id"])))


# --------------------------------------------------------------------------- the gate


def test_only_cleared_images_with_approved_captions_are_trained(studio, tmp_path):
    style, ids = make_trainable_style(studio, tmp_path, count=4, name="Gate test")
    studio.consent.revoke(ids[0], reason="the creator asked")
    studio.caption_records.set(ids[1], "a draft caption", approved=False)
    job = train(studio, style.id, config(max_steps=1, checkpoint_every=0, sample_every=0))
    assert job.status == "done", job.error
    run = studio.training.get_run(job.result["run_id"])
    hashes = [studio.store.get("images", i)["sha256"] for i in ids]
    assert sorted(run.image_hashes) == sorted(hashes[2:])
    manifest = json.loads((run.run_dir / "manifest.json").read_text())
    assert sorted(i["sha256"] for i in manifest["images"]) == sorted(hashes[2:])
    reasons = {e["image_id"]: e["reason"] for e in manifest["excluded"]}
    assert "consent revoked" in reasons[ids[0]]
    assert "no approved caption" in reasons[ids[1]]
    for sha in hashes[:2]:  # nothing was even encoded for the excluded images
        assert not (studio.workspace.cache_dir(style.id) / sha).exists()


def test_nothing_trainable_is_refused_with_reasons(studio, tmp_path):
    style, ids = make_trainable_style(studio, tmp_path, count=2, name="Refused")
    studio.consent.set(ids, ConsentRecord(status="pending"), fields=["status"])
    with pytest.raises(GateRefused, match="consent pending"):
        studio.training.start(style.id, config(), base_model="tiny-sd15")
    assert studio.training.runs(style.id) == []


def test_the_job_asks_the_gate_again_when_it_starts(studio, tmp_path):
    style, ids = make_trainable_style(studio, tmp_path, count=2, name="Late revoke")
    release = threading.Event()
    blocker = studio.jobs.submit("test.block", lambda ctx: release.wait(60) and None)
    job = studio.training.start(style.id, config(), base_model="tiny-sd15")
    studio.consent.revoke(ids, reason="withdrawn before training began")
    release.set()
    studio.jobs.wait(blocker.id, 60)
    job = studio.jobs.wait(job.id, 120)
    run = studio.training.get_run(job.params["run_id"])
    assert job.status == "failed" and run.status == "failed"
    assert "consent revoked" in run.error
    assert run.image_hashes == [] and not (run.run_dir / "lora").exists()


def test_resume_is_refused_when_the_images_changed(studio, tmp_path, monkeypatch):
    style, ids = make_trainable_style(studio, tmp_path, count=3, name="Changed")
    cancel_at(monkeypatch, studio, 2)
    job = train(studio, style.id)
    monkeypatch.undo()
    run = studio.training.get_run(job.params["run_id"])
    assert run.status == "cancelled"
    studio.consent.revoke(ids[1], reason="deletion request")
    with pytest.raises(GateRefused, match="consent revoked"):
        studio.training.resume(run.id)
    assert studio.training.get_run(run.id).status == "cancelled"
