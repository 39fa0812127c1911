"""The run page's core: every image behind a run (erased and revoked ones marked), its files
for download inside the upload cache, one run at a time per style, and the Playground's
choice of run (the newest finished one, not a newer cancelled try)."""

from __future__ import annotations

import json
import zipfile

import pytest
from playground_fixtures import make_lora_run
from training_helpers import hold_device, make_trainable_style, tiny_config

from style_studio.base.errors import InvalidInput


def _age(studio, run_id: str, when: str) -> None:
    """Runs made within one second sort by id; give them distinct start times."""
    studio.store.update("runs", run_id, created_at=when)


def test_playground_preselects_the_newest_finished_run_and_marks_the_others(studio, style):
    older_done = make_lora_run(studio, style.id, steps=(200,), seed=1)
    newer_done = make_lora_run(studio, style.id, steps=(300,), seed=2)
    cancelled = make_lora_run(studio, style.id, steps=(8,), final=False, seed=3)
    for run_id, when in ((older_done, "2025-05-01T10:00:00+00:00"),
                         (newer_done, "2025-05-02T10:00:00+00:00"),
                         (cancelled, "2025-05-03T10:00:00+00:00")):
        _age(studio, run_id, when)
    studio.store.update("runs", cancelled, total_steps=400)

    playground = studio.playground
    assert [r.run_id for r in playground.runs(style.id)] == [cancelled, newer_done, older_done]
    assert playground.preferred_run(style.id).run_id == newer_done
    assert playground.default_request(style.id).run_id == newer_done
    labels = {r.run_id: r.label for r in playground.runs(style.id)}
    assert "cancelled at step 8/400" in labels[cancelled]
    assert "short run" in labels[cancelled]
    assert "done · 300 steps" in labels[newer_done] and "short" not in labels[newer_done]


def test_without_a_finished_run_the_newest_with_a_lora_is_offered(studio, style):
    cancelled = make_lora_run(studio, style.id, steps=(150,), final=False)
    assert studio.playground.preferred_run(style.id).run_id == cancelled
    assert "■ cancelled" in studio.playground.runs(style.id)[0].label


@pytest.fixture
def trained(studio, tmp_path):
    """A finished tiny run on four cleared images (seconds on one thread)."""
    trained_style, ids = make_trainable_style(studio, tmp_path, count=4)
    job = studio.jobs.wait(studio.training.start(
        trained_style.id, tiny_config(max_steps=2, checkpoint_every=0),
        base_model="tiny-sd15").id, 300)
    assert job.status == "done", job.error
    return trained_style, ids, studio.training.get_run(job.result["run_id"])


def test_run_images_list_every_image_and_mark_erased_and_revoked(studio, trained):
    _, ids, run = trained
    images = studio.training.run_images(run.id)
    assert [i.image_id for i in images] == ids
    assert all(i.exists and i.state == "" for i in images)
    assert {i.creator for i in images} == {"Ana Artist"}
    assert {i.licence for i in images} == {"LicenseRef-OwnWork"}
    assert images[0].filename == "img-00.png" and images[0].caption == "a picture of shapes 0"
    assert images[0].consent_at_training == images[0].consent_now == "cleared"

    studio.consent.revoke(ids[1], "the client withdrew permission")
    studio.consent.erase(ids[2], "deletion request")
    images = studio.training.run_images(run.id)
    assert len(images) == 4  # an erased image stays listed, by its hash
    revoked, erased = images[1], images[2]
    assert revoked.revoked and revoked.exists
    assert revoked.state.startswith("consent revoked")
    assert erased.erased_at and not erased.exists and erased.filename == ""
    assert erased.state == f"erased {erased.erased_at}"
    assert erased.caption == erased.creator == f"[erased {erased.erased_at}]"
    assert erased.sha256 == run.image_hashes[2]
    assert images[0].state == images[3].state == ""


def test_run_files_and_zip_are_copies_in_the_upload_cache(studio, trained):
    _, ids, run = trained
    files = studio.training.run_files(run.id)
    assert [f.key for f in files] == ["diffusers", "diffusers-c2pa", "kohya", "kohya-c2pa",
                                      "card", "report", "manifest"]
    cache = studio.workspace.upload_cache
    originals = {"diffusers": run.run_dir / "lora" / "pytorch_lora_weights.safetensors",
                 "card": run.run_dir / "README.md", "report": run.run_dir / "provenance.md",
                 "manifest": run.run_dir / "manifest.json"}
    for item in files:
        assert cache in item.path.parents
        if item.key in originals:
            assert item.path.read_bytes() == originals[item.key].read_bytes()
    assert next(f for f in files if f.key == "kohya").path.name.endswith(
        ".kohya.safetensors")

    bundle = studio.training.run_bundle(run.id)
    assert cache in bundle.parents and bundle.suffix == ".zip"
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        top = names[0].split("/")[0]
        for key, path in originals.items():
            member = f"{top}/{path.relative_to(run.run_dir).as_posix()}"
            assert archive.read(member) == path.read_bytes(), key
    assert studio.training.run_bundle(run.id) == bundle  # reused while nothing changed

    # An erasure redacts the run's files: the stale copies and the zip go with it.
    studio.consent.erase(ids[0], "deletion request")
    assert not bundle.exists()
    manifest_copy = next(f.path for f in files if f.key == "manifest")
    assert not manifest_copy.exists()
    # The LoRA's credentials quote the training set: their stale copy goes too ...
    assert not next(f.path for f in files if f.key == "diffusers-c2pa").exists()
    fresh = {f.key: f.path for f in studio.training.run_files(run.id)}
    assert "[erased " in fresh["manifest"].read_text(encoding="utf-8")
    # ... and they were made again over the LoRA's redacted bytes.
    assert fresh["diffusers-c2pa"].read_bytes() == (
        run.run_dir / "lora" / "pytorch_lora_weights.c2pa").read_bytes()
    assert json.loads(fresh["manifest"].read_text(encoding="utf-8"))["erasures"]


def test_start_refuses_a_second_run_of_the_style_and_a_queued_run_says_waiting(
        studio, tmp_path):
    style, _ = make_trainable_style(studio, tmp_path, count=2)
    release = hold_device(studio)
    try:
        job = studio.training.start(style.id, tiny_config(max_steps=1), base_model="tiny-sd15")
        run = studio.training.get_run(job.params["run_id"])
        assert run.queued and run.shown_status == "waiting" and run.active
        with pytest.raises(InvalidInput, match=r"is waiting for the device.*before starting"):
            studio.training.start(style.id, tiny_config(max_steps=1), base_model="tiny-sd15")
        assert len(studio.training.runs(style.id)) == 1

        cancelled = studio.training.cancel(run.id)
        assert cancelled.status == "cancelled" and not cancelled.active
        again = studio.training.start(style.id, tiny_config(max_steps=1),
                                      base_model="tiny-sd15")  # allowed once none is active
        assert again.params["run_id"] != run.id
    finally:
        release.set()
    assert studio.jobs.wait(again.id, 300).status == "done"
