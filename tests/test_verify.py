"""Verify against the workspace and the client's provenance pack (issue 17): a signed output
names its run, signer and training set, and later shows an erased and a revoked image; bad
input gets words, not a traceback; the pack holds every file, its counts match the
database, and no private key."""

from __future__ import annotations

import csv
import io
import json
import zipfile

import pytest
from PIL import Image
from training_helpers import make_trainable_style, tiny_config
from verify_helpers import SIGNER, sign_run_and_output

from style_studio.base.errors import InvalidInput
from style_studio.training import verification
from style_studio.training.run_details import PACK_FILES


@pytest.fixture
def trained(studio, tmp_path):
    style, ids = make_trainable_style(studio, tmp_path, count=4)
    job = studio.jobs.wait(studio.training.start(
        style.id, tiny_config(max_steps=2, checkpoint_every=0), base_model="tiny-sd15").id, 300)
    assert job.status == "done", job.error
    return style, ids, studio.training.get_run(job.result["run_id"])


def test_a_signed_output_names_its_run_signer_and_training_set_then_erasure_and_revocation(
        studio, trained, tmp_path):
    _, ids, run = trained
    png = sign_run_and_output(studio.workspace.root, run.run_dir, run.id, tmp_path / "out.png")
    result = studio.verification.verify(png)
    assert result.has_credentials and result.intact and result.trusted, result.problems
    assert result.signer == SIGNER and result.run["run_id"] == run.id
    assert result.training_set is not None and len(result.training_set.image_hashes) == 4
    text = "\n".join(studio.verify(png))
    assert f"Made by training run {run.id}" in text
    assert "4 images by 1 creator(s) (Ana Artist)" in text
    assert "No training image has been erased since." in text
    assert f"This workspace holds run {run.id}: style Test shapes" in text

    studio.consent.revoke(ids[1], "the client withdrew permission")
    studio.consent.erase(ids[2], "deletion request")
    after = studio.verification.verify(png)
    assert len(after.erased) == 1 and len(after.revoked) == 1
    text = "\n".join(studio.verify(png))
    assert "1 training image(s) erased since" in text
    assert "1 training image(s) had consent revoked since" in text


def test_the_run_lora_verifies_alone_through_the_workspace_copy(studio, trained, tmp_path):
    _, _, run = trained
    sign_run_and_output(studio.workspace.root, run.run_dir, run.id, tmp_path / "out.png")
    dropped = tmp_path / "upload" / "pytorch_lora_weights.safetensors"
    dropped.parent.mkdir()
    dropped.write_bytes((run.run_dir / "lora" / dropped.name).read_bytes())
    result = studio.verification.verify(dropped)
    assert result.kind == "LoRA" and result.trusted and result.run["run_id"] == run.id
    # ... and says where its credentials came from: not from what was dropped
    said = " ".join(studio.verification.describe(result))
    assert "came without its .c2pa" in said
    assert "read from the workspace's copy (pytorch_lora_weights.c2pa)" in said
    # Dropped with its .c2pa (each upload in a folder of its own), they are paired.
    sidecar = tmp_path / "upload2" / "pytorch_lora_weights.c2pa"
    sidecar.parent.mkdir()
    sidecar.write_bytes((run.run_dir / "lora" / sidecar.name).read_bytes())
    paired = studio.verification.verify([dropped, sidecar])
    assert paired.trusted and paired.training_set is not None
    assert "came without" not in " ".join(studio.verification.describe(paired))
    with pytest.raises(InvalidInput, match="one file at a time"):
        studio.verify([dropped, sidecar, tmp_path / "out.png"])


def test_bad_input_gets_plain_words(studio, tmp_path, monkeypatch):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InvalidInput, match=r"is a \.txt file\. Verify reads images"):
        studio.verify(text)
    fake = tmp_path / "fake.png"
    fake.write_text("not a picture")
    with pytest.raises(InvalidInput, match="is not a readable image"):
        studio.verify(fake)
    with pytest.raises(InvalidInput, match="could not be found"):
        studio.verify(tmp_path / "gone.png")
    with pytest.raises(InvalidInput, match="Drop an image"):
        studio.verify([])
    plain = tmp_path / "plain.png"

    Image.new("RGB", (8, 8), "red").save(plain)
    assert studio.verify(plain) == ["No Content Credentials: nothing in or beside this file "
                                    "proves its origin."]
    monkeypatch.setattr(verification, "MAX_IMAGE_BYTES", 10)
    with pytest.raises(InvalidInput, match="an image to verify may be at most"):
        studio.verify(plain)


def test_the_provenance_pack_holds_every_file_with_counts_from_the_database(
        studio, trained, tmp_path):
    _, ids, run = trained
    sign_run_and_output(studio.workspace.root, run.run_dir, run.id, tmp_path / "out.png")
    pack = studio.verification.provenance_pack(run.id)
    assert pack.is_relative_to(studio.workspace.upload_cache)
    with zipfile.ZipFile(pack) as archive:
        names = archive.namelist()
        top = names[0].split("/")[0]
        for name in PACK_FILES.values():
            assert f"{top}/{name}" in names
        assert f"{top}/c2pa/pytorch_lora_weights.c2pa" in names
        data = {n: archive.read(n) for n in names}
    assert not any(b"PRIVATE KEY" in blob for blob in data.values())
    manifest = json.loads(data[f"{top}/manifest.json"])
    db_run = studio.store.get("runs", run.id)
    assert manifest["image_count"] == db_run["image_count"] == 4
    rows = list(csv.DictReader(io.StringIO(data[f"{top}/ledger.csv"].decode("utf-8-sig"))))
    assert [r["image_id"] for r in rows] == ids
    assert {r["sha256"] for r in rows} == set(db_run["image_hashes"])
    assert all(r["status"] == "cleared" for r in rows)
    summary = data[f"{top}/training-content-summary.md"].decode()
    for heading in ("## 1. General information", "## 2. List of data sources",
                    "## 3. Data processing aspects",
                    "### 3.1 Respect of reservation of rights"):
        assert heading in summary
    assert "- Training images: 4" in summary and "- Creators: 1" in summary
    assert f"- Provider: {SIGNER}" in summary
    page = data[f"{top}/provenance-report.html"].decode()
    assert "<table>" in page and f"run {run.id}" in page
    assert b"BEGIN CERTIFICATE" in data[f"{top}/public-certificate.pem"]
