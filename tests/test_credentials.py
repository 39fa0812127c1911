"""Content Credentials (issue 17): a workspace identity, signed outputs and LoRAs, verification
in plain words with the workspace root as the only anchor and the network off, and C2PA/CAWG
training-mining signals in uploads arriving as refused consent."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from PIL import Image

from style_studio.base.errors import InvalidInput
from style_studio.base.files import sha256_file
from style_studio.credentials.identity import (
    DOCUMENT_SIGNING,
    export_public_chain,
    rotate,
    signers,
    signing_identity,
    trust_anchor,
)
from style_studio.credentials.sign import (
    LoraFacts,
    OutputFacts,
    TrainingMining,
    lora_sidecar,
    sign_lora,
    sign_output,
)
from style_studio.credentials.signals import read_training_signal
from style_studio.credentials.verify import WorkspaceFacts, verify_file
from style_studio.credentials.xmp import TRAINED_ALGORITHMIC_MEDIA, build_png, png_chunks
from style_studio.playground.output_metadata import read_xmp

OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
CAWG = "cawg.training-mining"
IMAGES = [{"sha256": "a" * 64, "licence": "CC-BY-4.0", "creator": "Mara Quill"},
          {"sha256": "b" * 64, "licence": "LicenseRef-OwnWork", "creator": "Ada Lovelace"}]


def picture(seed: int = 0, size: int = 48) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3),
                                                                dtype=np.uint8))


@pytest.fixture
def identity(tmp_path):
    return signing_identity(tmp_path / "credentials", "Ada Lovelace")


@pytest.fixture
def lora(tmp_path):
    """A stand-in LoRA file (the bytes are what the manifest binds, not the tensors)."""
    path = tmp_path / "run" / "pytorch_lora_weights.safetensors"
    path.parent.mkdir()
    header = json.dumps({"__metadata__": {"style_studio.run_id": "r1"}}).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(range(256)))
    return path


def lora_facts() -> LoraFacts:
    manifest = {"run_id": "r1", "created_at": "2025-05-01T10:00:00+00:00",
                "style": {"name": "Ink washes"}, "images": IMAGES,
                "base_model": {"ref": "tiny-sd15", "identity": "tiny-sd15@abc"},
                "obligations": ["Credit Mara Quill (CC BY 4.0)"]}
    return LoraFacts.from_manifest(manifest, "m" * 64)


def output(tmp_path: Path, lora: Path | None, name: str = "out.png") -> tuple[Path, OutputFacts]:
    path = tmp_path / name
    picture(1).save(path)
    facts = OutputFacts(prompt="inkwash, a heron in reeds", base_model="tiny-sd15",
                        base_model_identity="tiny-sd15@abc", lora_path=lora, run_id="r1",
                        checkpoint="final", lora_scale=0.8, manifest_sha256="m" * 64,
                        style_name="Ink washes", created_at="2025-05-02T09:00:00+00:00")
    return path, facts


def read(path: Path, anchors: str) -> tuple[str, dict]:
    """c2pa-python's own Reader, the workspace root as the only anchor, network off."""
    with c2pa.Context.from_dict({**OFFLINE, "trust": {"trust_anchors": anchors}}) as ctx, \
            c2pa.Reader(str(path), context=ctx) as reader:
        report = json.loads(reader.json())
        return reader.get_validation_state(), report


def labelled(manifest: dict, label: str) -> dict:
    return next(a["data"] for a in manifest["assertions"] if a["label"] == label)


# -- identity -------------------------------------------------------------------------------
def test_the_identity_is_made_once_with_the_c2pa_profile_and_private_keys(tmp_path, identity):
    folder = tmp_path / "credentials"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    keys = [folder / "root.key", identity.signer.key_path]
    assert all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in keys)
    cert = x509.load_pem_x509_certificate(identity.signer.cert_pem.encode())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Ada Lovelace"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Ada Lovelace")
    usage = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    ekus = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    assert DOCUMENT_SIGNING in ekus and ExtendedKeyUsageOID.EMAIL_PROTECTION in ekus
    assert not cert.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca
    again = signing_identity(folder, "  Ada   Lovelace ")
    assert again.signer.fingerprint == identity.signer.fingerprint  # made on first use only
    chain = export_public_chain(again, tmp_path / "ada.pem").read_text()
    assert chain.count("BEGIN CERTIFICATE") == 2 and "PRIVATE" not in chain
    with pytest.raises(InvalidInput, match="artist's name"):
        signing_identity(folder, "  ")


def test_rotation_keeps_the_old_certificate_and_old_files_still_verify(tmp_path, identity):
    old_png, facts = output(tmp_path, None, "old.png")
    sign_output(old_png, facts, identity)
    new = rotate(tmp_path / "credentials", "Ada Lovelace")
    assert new.signer.fingerprint != identity.signer.fingerprint
    assert [s.fingerprint for s in signers(tmp_path / "credentials")] == [
        identity.signer.fingerprint, new.signer.fingerprint]
    assert signing_identity(tmp_path / "credentials", "Ada Lovelace").signer == new.signer
    new_png, facts = output(tmp_path, None, "new.png")
    sign_output(new_png, facts, new)
    anchors = trust_anchor(tmp_path / "credentials")
    assert [read(p, anchors)[0] for p in (old_png, new_png)] == ["Trusted", "Trusted"]


# -- signed outputs -------------------------------------------------------------------------
def test_a_signed_output_is_trusted_offline_and_says_how_it_was_made(tmp_path, identity, lora):
    sign_lora(lora, lora_facts(), identity)
    png, facts = output(tmp_path, lora)
    signed = sign_output(png, facts, identity)
    assert signed.sha256 == sha256_file(png)

    state, report = read(png, trust_anchor(tmp_path / "credentials"))
    assert state == "Trusted"
    manifest = report["manifests"][report["active_manifest"]]
    created = labelled(manifest, "c2pa.actions.v2")["actions"][0]
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert labelled(manifest, CAWG)["entries"]["cawg.ai_training"] == {"use": "notAllowed"}
    models = {i["title"]: i for i in manifest["ingredients"]}
    ingredient = models[lora.name]
    assert ingredient["metadata"]["sha256"] == sha256_file(lora)
    assert ingredient["data_types"] == [{"type": "c2pa.types.model"}]
    assert models["tiny-sd15"]["data_types"] == [{"type": "c2pa.types.model"}]
    assert manifest["signature_info"]["common_name"] == "Ada Lovelace"

    xmp = read_xmp(png)  # written before the manifest, so the signature covers it
    assert xmp["Iptc4xmpExt:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert xmp["Iptc4xmpExt:AISystemUsed"] == "tiny-sd15 + LoRA r1 (final)"
    assert xmp["Iptc4xmpExt:AIPromptInformation"] == "inkwash, a heron in reeds"
    assert xmp["plus:DataMining"].endswith("DMI-PROHIBITED-AIMLTRAINING")

    result = verify_file(png, WorkspaceFacts(trust_anchor(tmp_path / "credentials")))
    assert (result.has_credentials, result.intact, result.trusted) == (True, True, True)
    assert result.run["run_id"] == "r1" and result.lora_sha256 == sha256_file(lora)
    assert result.training_set is not None and len(result.training_set.image_hashes) == 2
    text = "\n".join(result.lines())
    assert "signed by Ada Lovelace" in text and "training run r1 (final)" in text
    assert "2 images by 2 creator(s) (Ada Lovelace, Mara Quill)" in text
    assert "AI training: not allowed" in text
    assert "No training image has been erased since." in text


def test_flipping_one_byte_of_pixel_data_breaks_the_signature(tmp_path, identity):
    png, facts = output(tmp_path, None)
    sign_output(png, facts, identity)
    chunks = png_chunks(png.read_bytes())
    index = [kind for kind, _ in chunks].index(b"IDAT")
    body = bytearray(chunks[index][1])
    body[len(body) // 2] ^= 0x01
    chunks[index] = (b"IDAT", bytes(body))
    png.write_bytes(build_png(chunks))  # a valid PNG again (CRC fixed): only the pixels differ

    anchors = trust_anchor(tmp_path / "credentials")
    assert read(png, anchors)[0] == "Invalid"
    result = verify_file(png, WorkspaceFacts(anchors))
    assert result.has_credentials and not result.intact and not result.trusted
    assert "changed after it was signed" in result.headline()


def test_another_root_or_no_root_is_intact_but_not_trusted(tmp_path, identity):
    png, facts = output(tmp_path, None)
    sign_output(png, facts, identity)
    stranger = signing_identity(tmp_path / "elsewhere", "Someone Else")
    for anchors in (stranger.root_pem, ""):
        result = verify_file(png, WorkspaceFacts(anchors))
        assert result.intact and not result.trusted
        assert "not trusted here" in "\n".join(result.lines())
    plain = tmp_path / "plain.png"
    picture(2).save(plain)
    assert not verify_file(plain, WorkspaceFacts(identity.root_pem)).has_credentials


# -- LoRA sidecar and what happened since ----------------------------------------------------
def test_a_lora_manifest_is_bound_to_its_bytes_and_lists_the_training_set(tmp_path, identity,
                                                                          lora):
    signed = sign_lora(lora, lora_facts(), identity)
    assert signed.manifest_path == lora_sidecar(lora) == lora.with_suffix(".c2pa")
    facts = WorkspaceFacts(identity.root_pem)
    for path in (lora, signed.manifest_path):  # either file may be dropped into Verify
        result = verify_file(path, facts)
        assert result.kind == "LoRA" and result.intact and result.trusted
        assert result.training_set.licences == {"CC-BY-4.0": 1, "LicenseRef-OwnWork": 1}
        assert result.training_set.creators == ("Ada Lovelace", "Mara Quill")

    data = bytearray(lora.read_bytes())
    data[-1] ^= 0x01
    lora.write_bytes(bytes(data))
    broken = verify_file(lora, facts)
    assert broken.has_credentials and not broken.intact
    assert "changed after it was signed" in broken.headline()
    lora_sidecar(lora).unlink()
    assert not verify_file(lora, facts).has_credentials


def test_verify_reports_images_erased_or_revoked_since_for_a_lora_and_an_earlier_output(
        tmp_path, identity, lora):
    sign_lora(lora, lora_facts(), identity)
    png, facts = output(tmp_path, lora)
    sign_output(png, facts, identity)  # made before the erasure below
    now = WorkspaceFacts(identity.root_pem, erased={"a" * 64: "erased 2025-06-01"},
                         revoked={"b" * 64: "revoked 2025-06-02"})
    for path in (lora, png):
        result = verify_file(path, now)
        assert result.intact and result.erased == {"a" * 64: "erased 2025-06-01"}
        assert result.revoked == {"b" * 64: "revoked 2025-06-02"}
        text = "\n".join(result.lines())
        assert "1 training image(s) erased since: aaaaaaaaaaaa… (erased 2025-06-01)" in text
        assert "1 training image(s) had consent revoked since" in text


def test_an_output_signed_before_its_lora_was_is_traced_through_the_workspace(tmp_path,
                                                                              identity, lora):
    png, facts = output(tmp_path, lora)
    sign_output(png, facts, identity)  # no sidecar yet: the LoRA ingredient has its hash only
    sign_lora(lora, lora_facts(), identity)
    alone = verify_file(png, WorkspaceFacts(identity.root_pem))
    assert alone.trusted and alone.training_set is None
    known = WorkspaceFacts(identity.root_pem, erased={"a" * 64: "2025-06-01"},
                           loras={sha256_file(lora): lora})
    traced = verify_file(png, known)
    assert traced.training_set is not None and list(traced.erased) == ["a" * 64]


def test_training_mining_choices_are_checked_and_worded():
    assert TrainingMining().plus_data_mining().endswith("DMI-PROHIBITED-AIMLTRAINING")
    assert TrainingMining("allowed", "allowed").plus_data_mining().endswith("DMI-ALLOWED")
    with pytest.raises(InvalidInput, match="notAllowed"):
        TrainingMining(ai_training="no")
    with pytest.raises(InvalidInput, match="constraint"):
        TrainingMining(ai_training="constrained")
    doc = TrainingMining(data_mining="notAllowed").to_doc()
    assert TrainingMining.from_doc(doc) == TrainingMining(data_mining="notAllowed")


# -- signals on import ------------------------------------------------------------------------
def creator_signed_jpeg(tmp_path: Path, label: str, prefix: str, use: str) -> Path:
    """A photo its creator signed with c2pa-python, saying `use` for AI training."""
    creator = signing_identity(tmp_path / "creator-credentials", "Mara Quill")
    source = io.BytesIO()
    picture(7, 64).save(source, "JPEG", quality=90)
    source.seek(0)
    manifest = {"claim_generator_info": [{"name": "a camera app"}], "title": "heron.jpg",
                "assertions": [
                    {"label": "c2pa.actions.v2", "data": {"actions": [{
                        "action": "c2pa.created", "digitalSourceType":
                        "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}},
                    {"label": label, "data": {"entries": {
                    f"{prefix}.ai_training": {"use": use},
                    f"{prefix}.ai_inference": {"use": "allowed"}}}}]}
    path = tmp_path / "heron.jpg"
    with c2pa.Context.from_dict(OFFLINE) as ctx, \
            c2pa.Builder(manifest, context=ctx) as builder, \
            c2pa.Signer.from_callback(creator.sign, c2pa.C2paSigningAlg.ES256,
                                      creator.chain_pem, None) as signer, \
            open(path, "w+b") as dest:
        builder.sign(signer, "image/jpeg", source, dest)
    return path


@pytest.mark.parametrize(("label", "prefix"), [("cawg.training-mining", "cawg"),
                                               ("c2pa.training-mining", "c2pa")])
def test_an_upload_whose_credentials_refuse_ai_training_arrives_refused(studio, style, tmp_path,
                                                                        label, prefix):
    upload = creator_signed_jpeg(tmp_path, label, prefix, "notAllowed")
    signal = read_training_signal(upload)
    assert signal is not None and signal.refused and signal.signer == "Mara Quill"

    record = studio.images.ingest(style.id, [upload]).added[0]
    assert record.source_meta["training_mining"] == (
        f"{label}: ai_inference allowed, ai_training notAllowed")
    assert any("Content Credentials say it may not be used" in w for w in record.warnings)
    consent = studio.consent.get(record.id)
    assert consent.record.status == "refused"
    assert consent.record.reason == (
        f"the file's Content Credentials say the creator does not allow AI training "
        f"({label}, signed by Mara Quill, signer not verified)")
    assert consent.metadata_refusal == consent.record.reason


def test_an_upload_that_allows_training_or_has_no_credentials_is_not_refused(studio, style,
                                                                             tmp_path):
    allowed = creator_signed_jpeg(tmp_path, CAWG, "cawg", "allowed")
    plain = tmp_path / "plain.png"
    picture(3, 64).save(plain)
    assert read_training_signal(plain) is None
    added = studio.images.ingest(style.id, [allowed, plain]).added
    assert [studio.consent.get(r.id).record.status for r in added] == ["pending", "pending"]
    assert "training_mining" not in added[1].source_meta
