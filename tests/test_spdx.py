"""Licences as SPDX identifiers: the vocabulary validates against the SPDX list bundled with
license-expression, a typo is refused with the closest match named, a database written
with the old keys migrates when it is opened, and files that cannot change (a run's
manifest, a ledger exported before) are still read and shown."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import ModelCard

from style_studio.base.errors import InvalidInput
from style_studio.base.licences import (
    CUSTOM,
    LEGACY_KEYS,
    LICENCES,
    OWN_WORK,
    PUBLIC_DOMAIN,
    WRITTEN_PERMISSION,
    licence_from_text,
    licence_key,
    licence_label,
    spdx_problem,
)
from style_studio.base.schema import SCHEMA_VERSION
from style_studio.base.store import Store
from style_studio.base.workspace import Workspace
from style_studio.credentials.sign import LoraFacts
from style_studio.credentials.verify import TrainingSetSummary
from style_studio.studio import Studio
from style_studio.training.config import TrainConfig
from style_studio.training.provenance import hf_licence, licence_summary, provenance_report

OLD_KEYS = ("own-work", "public-domain", "written-permission", "custom")


# -- the vocabulary ----------------------------------------------------------------------
def test_every_licence_of_the_vocabulary_is_valid_spdx():
    assert set(LICENCES) == {OWN_WORK, "CC0-1.0", "CC-BY-4.0", "CC-BY-SA-4.0", "CC-BY-NC-4.0",
                             "CC-BY-NC-SA-4.0", PUBLIC_DOMAIN, WRITTEN_PERMISSION, CUSTOM}
    for key in LICENCES:
        assert spdx_problem(key) is None, key
    assert all(key.startswith("LicenseRef-") for key in LEGACY_KEYS.values())
    # what a person reads did not change
    assert licence_label("CC-BY-4.0") == "CC BY 4.0"
    assert licence_label(OWN_WORK) == "Own work – all rights reserved"
    # the checker itself says no to what is not SPDX
    assert spdx_problem("CC-BY-4.O") and spdx_problem("own-work")
    assert spdx_problem("LicenseRef-") and spdx_problem("cc-by-4.0")  # SPDX's own case
    assert spdx_problem("MIT OR Apache-2.0") is None


def test_ids_labels_and_old_keys_are_accepted_in_any_case():
    assert licence_key("CC-BY-4.0") == licence_key("cc by 4.0") == "CC-BY-4.0"
    assert licence_key(" licenseref-ownwork ") == OWN_WORK
    assert licence_key("Written permission") == WRITTEN_PERMISSION
    for old in OLD_KEYS:  # a ledger exported before SPDX ids
        assert licence_key(old) == LEGACY_KEYS[old]
    assert licence_key("") == licence_key(None) == ""
    assert licence_from_text("Released into the public domain") == PUBLIC_DOMAIN


def test_a_typo_is_refused_with_the_closest_match_named():
    with pytest.raises(InvalidInput, match=r"Unknown licence 'CC-BY-4\.O'\. Did you mean "
                                           r"'CC-BY-4\.0' \(CC BY 4\.0\)\?"):
        licence_key("CC-BY-4.O")
    with pytest.raises(InvalidInput, match=r"Did you mean 'LicenseRef-OwnWork'"):
        licence_key("LicenseRef-OwnWrk")
    with pytest.raises(InvalidInput, match=r"Did you mean 'CC-BY-NC-SA-4\.0'"):
        licence_key("CC BY NC SA 4.0")
    with pytest.raises(InvalidInput, match=r"Unknown licence 'MIT OR'"):
        licence_key("MIT OR")  # license-expression's own validate() raises on this one


def test_a_valid_spdx_licence_outside_the_vocabulary_is_refused_in_plain_words():
    """The gate must know what a licence asks of a trainer (credit, non-commercial, terms),
    so a licence it cannot judge is recorded as a custom licence with its terms."""
    with pytest.raises(InvalidInput, match=r"'MIT' is a valid SPDX licence.*"
                                           r"'Custom licence \(text\)'"):
        licence_key("MIT")


# -- the database migration ----------------------------------------------------------------
def _old_database(path, image_ids: list[str], style_id: str) -> None:
    """studio.json as schema 1 wrote it: short licence keys in records and history."""
    history = [{"licence": "custom", "status": "pending", "creator": "Mira Ko",
                "relationship": "licensed", "changed_at": "2025-01-01T00:00:00+00:00"}]
    consents = {
        str(n): {"id": image_id, "style_id": style_id, "creator": "Mira Ko",
                 "relationship": relationship, "licence": licence, "status": "cleared",
                 "evidence_text": "letter of 2 May", "licence_text": "",
                 "history": history if n == 1 else [], "updated_at": "2025-01-02T00:00:00+00:00"}
        for n, (image_id, relationship, licence) in enumerate(zip(
            image_ids, ("own", "public-domain", "client", "licensed"),
            ("own-work", "public-domain", "written-permission", "CC-BY-4.0"), strict=True),
            start=1)}
    path.write_text(json.dumps({
        "meta": {"1": {"id": "schema_version", "value": 1}},
        "styles": {"1": {"id": style_id, "name": "Old ink", "trigger": "oldink",
                         "family": "sd15", "created_at": "2025-01-01T00:00:00+00:00"}},
        "images": {str(n): {"id": i, "style_id": style_id, "filename": f"{i}.png",
                            "sha256": f"{n:064x}", "added_at": f"2025-01-01-{n}"}
                   for n, i in enumerate(image_ids, start=1)},
        "consents": consents,
        "audit": {"1": {"id": "a1", "action": "consent.bulk", "style_id": style_id,
                        "details": {"licence": "own-work"}}},
    }), encoding="utf-8")


def test_an_old_database_migrates_its_licences_when_opened(tmp_path):
    workspace = Workspace(tmp_path / "workspace").ensure()
    ids = ["img1", "img2", "img3", "img4"]
    _old_database(workspace.db_path, ids, "st1")

    with Studio(workspace) as studio:
        assert studio.store.meta_get("schema_version") == SCHEMA_VERSION == 2
        assert any("upgraded to schema 2" in n for n in studio.notices)
        records = [studio.consent.get(i).record for i in ids]
        assert [r.licence for r in records] == [OWN_WORK, PUBLIC_DOMAIN, WRITTEN_PERMISSION,
                                                "CC-BY-4.0"]
        # a relationship that happens to share a spelling with an old licence key stays
        assert records[1].relationship == "public-domain"
        assert studio.consent.get("img1").history[0]["licence"] == CUSTOM
        assert studio.store.all("audit")[0]["details"]["licence"] == OWN_WORK
        ledger = {row["image_id"]: row for row in json.loads(studio.consent.export_ledger(
            "st1", tmp_path / "ledger.json").read_text(encoding="utf-8"))["images"]}
        assert ledger["img1"]["licence"] == OWN_WORK
        assert ledger["img1"]["licence_name"] == "Own work – all rights reserved"
    raw = workspace.db_path.read_text(encoding="utf-8")
    assert not any(f'"licence": "{old}"' in raw for old in OLD_KEYS)

    # opened again: nothing left to migrate, no second notice
    reopened = Store(workspace.db_path)
    assert reopened.notices == [] and reopened.meta_get("schema_version") == 2
    reopened.close()


# -- manifests written before SPDX ids ----------------------------------------------------
def _old_manifest(run_id: str, style_id: str) -> dict:
    images = [{"sha256": f"{n:064x}", "image_id": f"img{n}", "caption": f"a heron {n}",
               "training_caption": f"oldink, a heron {n}", "creator": "Mira Ko",
               "licence": licence, "consent_status": "cleared"}
              for n, licence in enumerate(("own-work", "CC-BY-SA-4.0", "custom"), start=1)]
    return {"format": "style-studio-manifest/1", "run_id": run_id,
            "created_at": "2025-01-03T00:00:00+00:00",
            "style": {"id": style_id, "name": "Ink washes", "trigger": "inkwash",
                      "family": "sd15"},
            "images": images, "image_count": 3, "excluded": [], "creators": ["Mira Ko"],
            "licences": {"own-work": 1, "CC-BY-SA-4.0": 1, "custom": 1},
            "obligations": ["attribution required (CC BY): credit Mira Ko"],
            "attributions": ["Mira Ko"], "config": TrainConfig().to_dict(), "seed": 1,
            "base_model": {"ref": "tiny-sd15", "identity": "tiny-sd15@seed0",
                           "family": "sd15", "label": "tiny", "reference": None},
            "device": "CPU", "energy_method": "estimate", "libraries": {}}


def test_an_old_manifest_still_displays_with_spdx_ids_and_labels(studio, style):
    run = studio.store.insert("runs", {"style_id": style.id, "status": "done",
                                       "image_hashes": [], "flags": []})
    manifest = _old_manifest(run["id"], style.id)
    run_dir = studio.workspace.run_dir(style.id, run["id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    before = (run_dir / "manifest.json").read_bytes()

    images = studio.training.run_images(run["id"])
    assert [(i.licence, i.licence_label) for i in images] == [
        (OWN_WORK, "Own work – all rights reserved"), ("CC-BY-SA-4.0", "CC BY-SA 4.0"),
        (CUSTOM, "Custom licence (text)")]
    assert licence_summary(manifest) == ("training images: CC BY-SA 4.0 (1), Custom licence "
                                         "(text) (1), Own work – all rights reserved (1)")
    assert hf_licence(manifest) == "cc-by-sa-4.0"
    report = provenance_report(manifest, "0" * 64)
    assert f"| {OWN_WORK} |" in report and "| own-work |" not in report

    studio.training.rewrite_cards(run["id"])  # what an erasure does to an old run
    card = ModelCard.load(run_dir / "README.md")
    assert card.data.license == "cc-by-sa-4.0" and card.data.base_model_relation == "adapter"
    assert f"`CC-BY-SA-4.0 AND {CUSTOM} AND {OWN_WORK}`" in card.text
    assert (run_dir / "manifest.json").read_bytes() == before  # read, never rewritten

    facts = LoraFacts.from_manifest(manifest, "0" * 64).training_set()
    assert facts["licences"] == {"CC-BY-SA-4.0": 1, CUSTOM: 1, OWN_WORK: 1}
    summary = TrainingSetSummary.from_assertion({"images": [], "licences": {"own-work": 2}})
    assert "Own work – all rights reserved (2)" in summary.line()
