"""Content Credentials wired in (issue 17): the workspace identity and its name, each style's
training-mining choice, signed Playground outputs and LoRAs, signatures renewed after an
erasure, the near-copy guard on outputs, and the private keys never served or exported."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import stat
import zipfile
from dataclasses import replace
from types import SimpleNamespace

import pytest
from PIL import Image
from training_helpers import make_trainable_style, tiny_config

from style_studio.base.errors import InvalidInput
from style_studio.base.files import sha256_file
from style_studio.credentials.service import FALLBACK_AUTHOR
from style_studio.credentials.sign import TrainingMining, lora_sidecar
from style_studio.playground.output_metadata import read_chunks, read_settings, read_xmp
from style_studio.playground.records import GenerateRequest


@pytest.fixture
def trained(studio, tmp_path):
    """A finished tiny run on four cleared images (own work of "Ana Artist")."""
    style, ids = make_trainable_style(studio, tmp_path, count=4)
    job = studio.jobs.wait(studio.training.start(
        style.id, tiny_config(max_steps=2, checkpoint_every=0), base_model="tiny-sd15").id, 300)
    assert job.status == "done", job.error
    return style, ids, studio.training.get_run(job.result["run_id"])


def ask(style, run_id: str | None, **changes) -> GenerateRequest:
    values = {"prompt": "shapestyle, a house", "seed": 3, "steps": 2, "width": 64,
              "height": 64, "run_id": run_id, **changes}
    return GenerateRequest(style_id=style.id, **values)


def test_artist_name_defaults_to_own_work_creator_and_can_be_set(studio, tmp_path):
    assert studio.credentials.artist_name() == FALLBACK_AUTHOR
    make_trainable_style(studio, tmp_path, count=2)  # own work of "Ana Artist"
    assert studio.credentials.artist_name() == "Ana Artist"
    assert studio.credentials.set_artist_name("  Mara   Quill ") == "Mara Quill"
    assert studio.credentials.identity().author == "Mara Quill"
    with pytest.raises(InvalidInput, match="at most 64"):
        studio.credentials.set_artist_name("x" * 65)
    with pytest.raises(InvalidInput, match="your name"):
        studio.credentials.set_artist_name("  ")
    assert studio.credentials.artist_name() == "Mara Quill"


def test_training_mining_is_kept_per_style_and_defaults_to_no_ai_training(studio, style):
    assert studio.credentials.training_mining(style.id) == TrainingMining()
    other = studio.styles.create("Other", trigger="otherstyle")
    allowed = TrainingMining(ai_training="allowed", ai_generative_training="allowed")
    studio.credentials.set_training_mining(other.id, allowed)
    assert studio.credentials.training_mining(other.id) == allowed
    assert studio.credentials.training_mining(style.id).ai_training == "notAllowed"
    with pytest.raises(InvalidInput, match="constraint"):
        studio.credentials.set_training_mining(style.id, TrainingMining(
            ai_training="constrained"))


def test_playground_output_of_a_tiny_run_verifies_intact_and_trusted(studio, trained):
    style, _, run = trained
    output = studio.playground.generate(ask(style, run.id), timeout=120)[0]
    job = studio.playground.latest_job(style.id)
    assert "not signed" not in str((job.result or {}).get("warning", ""))
    found = studio.credentials.verify(output.path)
    assert found.has_credentials and found.intact and found.trusted, found.lines()
    assert found.state == "Trusted" and found.signer == "Ana Artist"
    assert found.run["run_id"] == run.id
    lora = run.run_dir / "lora" / "pytorch_lora_weights.safetensors"
    assert found.lora_sha256 == sha256_file(lora) == output.settings.lora_sha256
    assert found.training_mining["cawg.ai_training"] == "notAllowed"
    assert found.training_set is not None and len(found.training_set.image_hashes) == 4
    # The settings and XMP still read back after signing.
    assert read_settings(output.path).run_id == run.id
    assert read_xmp(output.path)  # the IPTC packet is there


def test_the_styles_choice_and_the_base_alone_are_signed_too(studio, trained):
    style, _, _ = trained
    studio.credentials.set_training_mining(style.id, TrainingMining(
        ai_training="allowed", ai_generative_training="allowed"))
    output = studio.playground.generate(ask(style, None), timeout=120)[0]
    found = studio.credentials.verify(output.path)
    assert found.intact and found.trusted, found.lines()
    assert found.training_mining["cawg.ai_training"] == "allowed"


def test_a_failed_signature_keeps_the_image_and_says_why(studio, trained, monkeypatch):
    style, _, run = trained

    def broken():
        raise OSError("the credentials folder is read-only")

    monkeypatch.setattr(studio.credentials, "identity", broken)
    outputs = studio.playground.generate(ask(style, run.id, count=2), timeout=120)
    job = studio.playground.latest_job(style.id)
    assert job.status == "done" and len(outputs) == 2
    assert all(o.path.is_file() for o in outputs)
    assert "2 image(s) were saved but not signed" in job.result["warning"]
    assert "read-only" in job.result["warning"]
    assert not studio.credentials.verify(outputs[0].path).has_credentials


def test_finished_run_loras_carry_credentials_that_verify(studio, trained):
    _, _, run = trained
    loras = sorted((run.run_dir / "lora").glob("*.safetensors"))
    assert len(loras) == 2  # diffusers and kohya
    for lora in loras:
        assert lora_sidecar(lora).is_file()
        found = studio.credentials.verify(lora)
        assert found.kind == "LoRA" and found.intact and found.trusted, found.lines()
        assert found.training_set.run_id == run.id
        assert set(found.training_set.image_hashes) == set(run.image_hashes)
        assert not found.erased
    keys = [f.key for f in studio.training.run_files(run.id)]
    assert "diffusers-c2pa" in keys and "kohya-c2pa" in keys


def test_after_an_erasure_the_lora_is_signed_again_and_reports_the_image(studio, trained):
    style, ids, run = trained
    lora = run.run_dir / "lora" / "pytorch_lora_weights.safetensors"
    before = sha256_file(lora)
    output = studio.playground.generate(ask(style, run.id), timeout=120)[0]
    key = next((studio.workspace.credentials_dir / "signers").glob("*/key.pem"))
    key_bytes = key.read_bytes()
    studio.consent.erase(ids[0], "deletion request")
    assert sha256_file(lora) != before  # its metadata was redacted
    for path in sorted((run.run_dir / "lora").glob("*.safetensors")):
        found = studio.credentials.verify(path)
        assert found.intact and found.trusted, found.lines()
        assert list(found.erased) == [run.image_hashes[0]]
        assert "1 training image(s) erased since" in " ".join(found.lines())
    # An output made before the erasure names the LoRA by its old hash; the run remembers
    # every hash its LoRA had, so the output still finds its training set, image erased.
    found = studio.credentials.verify(output.path)
    assert found.intact and found.trusted, found.lines()
    assert found.lora_sha256 == before and found.run["run_id"] == run.id
    assert list(found.erased) == [run.image_hashes[0]], found.lines()
    # The erasure left the signing identity alone.
    assert key.read_bytes() == key_bytes


def test_private_keys_are_never_served_nor_exported(studio, trained):
    from style_studio.ui.shell import launch_options

    _, _, run = trained
    folder = studio.workspace.credentials_dir
    assert str(folder) in launch_options(studio)["blocked_paths"]
    assert str(folder) in studio.private_paths()
    keys = list(folder.rglob("*.key")) + list(folder.rglob("key.pem"))
    assert keys and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    bundle = studio.training.run_bundle(run.id)
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert any(n.endswith(".c2pa") for n in names)
    assert not any(n.endswith((".key", ".pem")) for n in names)
    assert not any(folder in p.parents for p in studio.workspace.upload_cache.rglob("*"))


def test_an_output_that_is_a_training_image_is_flagged(studio, trained, monkeypatch):
    style, ids, run = trained
    training = studio.images.path(ids[1])
    with Image.open(training) as image:
        copy = image.convert("RGB").resize((64, 64))
    real = studio.playground.cache.activate

    def activate(*args, **kwargs):
        active = real(*args, **kwargs)
        fake = SimpleNamespace(images=[copy])
        return replace(active, pipe=lambda **_: fake)

    monkeypatch.setattr(studio.playground.cache, "activate", activate)
    output = studio.playground.generate(ask(style, run.id), timeout=120)[0]
    name = studio.images.get(ids[1]).filename
    assert [m.filename for m in output.near_copies] == [name]
    assert output.near_copies[0].thumb is not None and output.near_copies[0].thumb.is_file()
    # The PNG names the image by id (an erasure cannot rewrite outputs); the app by name.
    chunks = read_chunks(output.path)
    assert f"very close to training image id {ids[1]}" in chunks["near_copy"]
    assert name not in chunks["near_copy"] and chunks["near_copy_images"] == ids[1]
    assert "very close to a training image" in studio.playground.latest_job(
        style.id).result["warning"]
    # Recorded before signing: the credentials still verify.
    assert studio.credentials.verify(output.path).intact
    marks = studio.playground.history(style.id)[0].near_copies
    assert [m.description for m in marks] == [output.near_copies[0].description]
    assert f"very close to training image {name}" in marks[0].description
    studio.consent.erase(ids[1], "deletion request")
    again = studio.playground.output_at(output.path).near_copies
    assert "very close to training image (an image erased since)" in again[0].description
    assert studio.playground.outputs(studio.playground.latest_job(style.id).id)[
        0].near_copies[0].thumb is None  # the thumbnail went with the image


def test_an_ordinary_output_is_not_flagged(studio, trained):
    style, _, run = trained
    outputs = studio.playground.generate(ask(style, run.id, count=2), timeout=120)
    assert [o.near_copies for o in outputs] == [[], []]
    assert all("near_copy" not in read_chunks(o.path) for o in outputs)


def test_style_settings_words_map_to_the_cawg_values():
    from style_studio.ui.styles_panel import MINING_CHOICES, mining_choice, mining_from_choice

    assert [value for _, value in MINING_CHOICES] == ["no", "ask", "yes"]
    assert mining_from_choice("no", "") == TrainingMining()
    assert mining_from_choice(None, "") == TrainingMining()
    ask = mining_from_choice("ask", "mail@example.org")
    assert ask.ai_training == "constrained" and mining_choice(ask) == ("ask", "mail@example.org")
    assert mining_choice(mining_from_choice("yes", "")) == ("yes", "")
    with pytest.raises(InvalidInput, match="Say what the constraint is"):
        mining_from_choice("ask", " ")
