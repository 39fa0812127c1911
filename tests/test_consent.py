"""Consent & licence: records with history, the training gate, revocation, erasure, ledger."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from style_studio.base.erasure import ERASED_FLAG, REVOKED_FLAG
from style_studio.base.errors import GateRefused, InvalidInput, NotFound
from style_studio.base.files import sha256_bytes
from style_studio.base.store import utc_now
from style_studio.consent.gate import TrainingPlan
from style_studio.consent.records import ConsentRecord

PLUS = "http://ns.useplus.org/ldf/vocab/"


def _png(seed: int, size: int, fmt: str = "PNG") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, fmt)
    return out.getvalue()


def add_image(studio, style_id: str, name: str, seed: int, *, meta: dict | None = None,
              caption: str | None = "inkwash, a heron in reeds") -> dict:
    """An image as ingest leaves it (contract of the images table), plus the copies the
    app makes along the way: Gradio's upload cache and a cached latent."""
    ws = studio.workspace
    stored, source, thumb = _png(seed, 24), _png(seed, 24, "BMP"), _png(seed, 8, "WEBP")
    sha = sha256_bytes(stored)
    for rel, data in ((f"images/{sha}.png", stored), (f"thumbs/{sha}.webp", thumb)):
        (ws.style_dir(style_id) / rel).parent.mkdir(parents=True, exist_ok=True)
        (ws.style_dir(style_id) / rel).write_bytes(data)
    for sub, data in (("upload1", source), ("served2", stored), ("served3", thumb)):
        (ws.upload_cache / f"{sub}-{seed}").mkdir(parents=True, exist_ok=True)
        (ws.upload_cache / f"{sub}-{seed}" / name).write_bytes(data)
    latent = ws.cache_dir(style_id) / sha / "latent.safetensors"
    latent.parent.mkdir(parents=True, exist_ok=True)
    latent.write_bytes(b"fake latent " + sha.encode())
    doc = studio.store.insert("images", {
        "style_id": style_id, "filename": name, "stored_path": f"images/{sha}.png",
        "thumb_path": f"thumbs/{sha}.webp", "sha256": sha, "source_sha256": sha256_bytes(source),
        "thumb_sha256": sha256_bytes(thumb), "width": 24, "height": 24, "format": "PNG",
        "phash": "0" * 16, "warnings": [], "near_duplicates": [],
        "source_meta": {"creator": None, "copyright": None, "credit": None,
                        "data_mining": None, **(meta or {})},
        "added_at": f"{utc_now()}-{seed:03d}"})
    if caption is not None:
        studio.caption_records.set(doc["id"], caption, approved=True)
    return doc


def own(**changes) -> ConsentRecord:
    base = dict(creator="Mira Ko", relationship="own", licence="LicenseRef-OwnWork",
                status="cleared")
    return ConsentRecord(**{**base, **changes})


def add_run(studio, style_id: str, hashes: list[str]) -> str:
    return studio.store.insert("runs", {"style_id": style_id, "status": "done",
                                        "image_hashes": hashes, "flags": []})["id"]


def files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


# -- the gate --------------------------------------------------------------------------------
def test_gate_includes_only_cleared_captioned_images_and_says_why(studio, style):
    ok = add_image(studio, style.id, "ok.png", 1)
    pending = add_image(studio, style.id, "pending.png", 2)
    refused = add_image(studio, style.id, "refused.png", 3)
    revoked = add_image(studio, style.id, "revoked.png", 4)
    add_image(studio, style.id, "unrecorded.png", 5)
    uncaptioned = add_image(studio, style.id, "uncaptioned.png", 6, caption=None)
    draft = add_image(studio, style.id, "draft.png", 7)
    studio.caption_records.set(draft["id"], "inkwash, draft words", approved=False)
    custom = add_image(studio, style.id, "custom.png", 8)
    letter = add_image(studio, style.id, "letter.png", 9)
    client = add_image(studio, style.id, "client.png", 10)
    studio.consent.set([ok["id"], uncaptioned["id"], draft["id"]], own())
    studio.consent.set(pending["id"], own(status="pending"))
    studio.consent.set(refused["id"], own(status="refused", reason="the model said no"))
    studio.consent.set(revoked["id"], own())
    studio.consent.revoke(revoked["id"], "client withdrew on 3 May")
    studio.consent.set(custom["id"], own(relationship="licensed", licence="LicenseRef-Custom"))
    studio.consent.set(letter["id"], own(relationship="client",
                                         licence="LicenseRef-WrittenPermission"))
    studio.consent.set(client["id"], own(relationship="client"))

    plan = studio.consent.trainable(style.id)

    assert [i.image_id for i in plan.included] == [ok["id"]]
    item = plan.included[0]
    assert item.path.is_file() and item.sha256 == ok["sha256"]
    assert (item.caption, item.creator, item.licence, item.status) == (
        "inkwash, a heron in reeds", "Mira Ko", "LicenseRef-OwnWork", "cleared")
    reasons = {e.filename: e.reason for e in plan.excluded}
    assert reasons["pending.png"] == "consent pending"
    assert reasons["refused.png"] == "consent refused: the model said no"
    assert reasons["revoked.png"] == "consent revoked: client withdrew on 3 May"
    assert reasons["unrecorded.png"] == "no consent record"
    assert reasons["uncaptioned.png"] == "no approved caption"
    assert reasons["draft.png"] == "no approved caption"
    assert reasons["custom.png"].startswith("licence does not allow training: a custom licence")
    assert "written permission needs evidence" in reasons["letter.png"]
    assert "only covers your own work" in reasons["client.png"]
    assert plan.summary().startswith("1 of 10 images can be trained on. Excluded: ")
    assert "1 consent pending" in plan.summary() and "2 no approved caption" in plan.summary()


def test_the_gate_refuses_a_training_request_for_images_that_are_not_cleared(studio, style):
    ok = add_image(studio, style.id, "ok.png", 1)
    pending = add_image(studio, style.id, "pending.png", 2)
    with pytest.raises(GateRefused, match="No image of this style can be trained on"):
        studio.consent.require_trainable(style.id)
    studio.consent.set(ok["id"], own())
    studio.consent.set(pending["id"], own(status="pending"))
    assert studio.consent.require_trainable(style.id).image_hashes == [ok["sha256"]]
    with pytest.raises(GateRefused, match=r"pending\.png: consent pending"):
        studio.consent.require_trainable(style.id, [ok["id"], pending["id"]])


def test_licence_conditions_become_obligations(studio, style):
    ana = add_image(studio, style.id, "ana.png", 1)
    bo = add_image(studio, style.id, "bo.png", 2)
    cc0 = add_image(studio, style.id, "cc0.png", 3)
    studio.consent.set(ana["id"], own(creator="Ana", relationship="licensed",
                                      licence="CC-BY-4.0"))
    studio.consent.set(bo["id"], own(creator="Bo", relationship="licensed",
                                     licence="CC BY-NC-SA 4.0"))
    studio.consent.set(cc0["id"], own(creator="", relationship="public-domain",
                                      licence="CC0-1.0"))
    plan = studio.consent.trainable(style.id)
    assert len(plan.included) == 3
    assert plan.attributions == ["Ana", "Bo"]
    assert plan.obligations == [
        "attribution required (CC BY): credit Ana, Bo",
        "non-commercial use only (CC BY-NC)",
        "share-alike (CC BY-SA): share adaptations under the same licence"]
    assert plan.licences == {"CC-BY-4.0": 1, "CC-BY-NC-SA-4.0": 1, "CC0-1.0": 1}
    studio.consent.set(ana["id"], ConsentRecord(creator=""), fields=["creator"])
    reasons = {e.filename: e.reason for e in studio.consent.trainable(style.id).excluded}
    assert "CC BY 4.0 requires attribution" in reasons["ana.png"]


# -- prefill from the file's metadata --------------------------------------------------------
@pytest.mark.parametrize("value, refused", [
    (PLUS + "DMI-PROHIBITED", True),
    (PLUS + "DMI-PROHIBITED-AIMLTRAINING", True),
    ("DMI-PROHIBITED-GENAIMLTRAINING", True),
    (PLUS + "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING", True),
    (PLUS + "DMI-ALLOWED", False),
    (PLUS + "DMI-UNSPECIFIED", False),
    (None, False),
])
def test_data_mining_prohibition_prefills_a_refusal(studio, style, value, refused):
    image = add_image(studio, style.id, "tagged.jpg", 1, meta={
        "creator": "Jo  Lind", "copyright": "© 2024 Jo Lind, CC BY 4.0", "data_mining": value})
    consent = studio.consent.get(image["id"])
    assert not consent.saved
    assert consent.record.creator == "Jo Lind"
    assert consent.record.licence == "CC-BY-4.0"
    assert "© 2024 Jo Lind" in consent.record.notes
    reason = studio.consent.trainable(style.id).excluded[0].reason
    if refused:
        assert consent.record.status == "refused"
        assert "IPTC plus:DataMining" in consent.record.reason
        assert consent.badge == "✗ refused (file metadata)"
        assert reason.startswith("consent refused: the file's metadata says ")
    else:
        assert (consent.record.status, consent.record.reason) == ("pending", "")
        assert reason == "no consent record"


def test_a_metadata_refusal_is_only_lifted_by_own_work_or_written_permission(studio, style):
    image = add_image(studio, style.id, "tagged.jpg", 1, meta={
        "creator": "Jo", "data_mining": PLUS + "DMI-PROHIBITED-AIMLTRAINING"})
    report = studio.consent.set(image["id"], own(relationship="licensed", licence="CC-BY-4.0"))
    assert report.changed == [] and "prohibited for AI/ML training" in report.skipped[0][1]
    assert not studio.consent.get(image["id"]).saved
    report = studio.consent.own_work(style.id, "Jo")
    assert report.changed == [image["id"]]
    assert studio.consent.trainable(style.id).image_hashes == [image["sha256"]]
    history = studio.consent.get(image["id"]).history
    assert history[0]["origin"] == "file metadata" and history[0]["status"] == "refused"


# -- bulk edit and history -------------------------------------------------------------------
def test_bulk_edit_changes_only_the_chosen_fields_and_keeps_history(studio, style):
    images = [add_image(studio, style.id, f"{n}.png", i, meta={"creator": n})
              for i, n in enumerate(["Ana", "Bo", "Cy"], start=1)]
    ids = [d["id"] for d in images]
    report = studio.consent.set(ids[:2], ConsentRecord(
        licence="CC BY 4.0", relationship="Licensed", status="cleared"),
        fields=["licence", "relationship", "status"])
    assert sorted(report.changed) == sorted(ids[:2])
    first, second, third = (studio.consent.get(i) for i in ids)
    assert (first.record.creator, first.record.licence, first.record.status) == (
        "Ana", "CC-BY-4.0", "cleared")
    assert first.record.date == utc_now()[:10] and second.record.creator == "Bo"
    assert first.badge == "✓ cleared" and third.badge == "? no record"

    studio.consent.set(ids[0], ConsentRecord(licence="CC-BY-SA-4.0"), fields=["licence"])
    again = studio.consent.set(ids[0], ConsentRecord(licence="CC-BY-SA-4.0"), fields=["licence"])
    assert again.unchanged == [ids[0]] and again.changed == []
    history = studio.consent.get(ids[0]).history
    assert [h["licence"] for h in history] == ["", "CC-BY-4.0"]
    assert history[0]["origin"] == "file metadata" and history[1]["changed_at"]

    report = studio.consent.set_all(style.id, ConsentRecord(notes="batch 2"), fields=["notes"])
    assert len(report.changed) == 3
    assert {c.record.notes for c in studio.consent.for_style(style.id)} == {"batch 2"}
    assert [c.record.creator for c in studio.consent.for_style(style.id)] == ["Ana", "Bo", "Cy"]


def test_all_my_own_work_shortcut_and_bad_values(studio, style):
    for i in range(3):
        add_image(studio, style.id, f"{i}.png", i)
    with pytest.raises(InvalidInput, match="Write your name"):
        studio.consent.own_work(style.id, "  ")
    report = studio.consent.own_work(style.id, "Mira Ko")
    assert len(report.changed) == 3
    plan = studio.consent.trainable(style.id)
    assert len(plan.included) == 3 and plan.obligations == []
    assert all(c.record.relationship == "own" for c in studio.consent.for_style(style.id))
    one = plan.included[0].image_id
    with pytest.raises(InvalidInput, match="Unknown licence 'CC-BY-ND'"):
        studio.consent.set(one, ConsentRecord(licence="CC-BY-ND"))
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        studio.consent.set(one, ConsentRecord(date="3rd of May"))
    with pytest.raises(InvalidInput, match="Select at least one image"):
        studio.consent.set([], own())
    studio.consent.set(one, ConsentRecord(status="pending", date="2024-05-03T10:00"),
                       fields=["status", "date"])
    assert studio.consent.get(one).record.date == "2024-05-03"
    report = studio.consent.set([one, "gone"], ConsentRecord(notes="x"), fields=["notes"])
    assert report.changed == [one] and report.skipped[0][0] == "gone"


def test_evidence_is_kept_with_the_style_under_its_hash(studio, style, tmp_path):
    image = add_image(studio, style.id, "letter.png", 1)
    letter = tmp_path / "Permission from Ana.PDF"
    letter.write_bytes(b"%PDF-1.4 Ana allows training")
    rel = studio.consent.attach_evidence(style.id, letter)
    assert rel == f"evidence/{sha256_bytes(letter.read_bytes())}.pdf"
    assert (studio.workspace.style_dir(style.id) / rel).read_bytes() == letter.read_bytes()
    assert studio.consent.attach_evidence(style.id, letter) == rel
    studio.consent.set(image["id"], own(relationship="client",
                                        licence="LicenseRef-WrittenPermission",
                                        evidence_file=rel))
    assert studio.consent.trainable(style.id).image_hashes == [image["sha256"]]
    bad = tmp_path / "run.exe"
    bad.write_bytes(b"MZ")
    with pytest.raises(InvalidInput, match="cannot be kept as evidence"):
        studio.consent.attach_evidence(style.id, bad)
    report = studio.consent.set(image["id"], ConsentRecord(evidence_file="evidence/nope.pdf"),
                                fields=["evidence_file"])
    assert "not in this style's evidence folder" in report.skipped[0][1]


# -- revocation and erasure ------------------------------------------------------------------
def test_revoking_flags_runs_and_keeps_the_file(studio, style):
    image = add_image(studio, style.id, "a.png", 1)
    other = add_image(studio, style.id, "b.png", 2)
    studio.consent.own_work(style.id, "Mira")
    used = add_run(studio, style.id, [image["sha256"], other["sha256"]])
    unused = add_run(studio, style.id, [other["sha256"]])
    with pytest.raises(InvalidInput, match="Write why"):
        studio.consent.revoke(image["id"], " ")
    report = studio.consent.revoke(image["id"], "model asked to withdraw")
    assert report.flagged_runs == [used]
    assert studio.store.get("runs", used)["flags"] == [REVOKED_FLAG]
    assert studio.store.get("runs", unused)["flags"] == []
    assert (studio.workspace.style_dir(style.id) / image["stored_path"]).is_file()
    assert studio.consent.get(image["id"]).badge == "⊘ revoked"
    audit = [a for a in studio.store.all("audit") if a["action"] == "consent.revoke"]
    assert audit[0]["details"]["sha256"] == image["sha256"]


def test_erasure_leaves_no_copy_anywhere_and_flags_runs(studio, style, tmp_path):
    image = add_image(studio, style.id, "heron.png", 1, meta={"creator": "Ana"})
    keep = add_image(studio, style.id, "keep.png", 2)
    letter = tmp_path / "ana.pdf"
    letter.write_bytes(b"%PDF Ana's permission")
    evidence = studio.consent.attach_evidence(style.id, letter)
    studio.consent.set(image["id"], own(creator="Ana", relationship="client",
                                        licence="LicenseRef-WrittenPermission",
                                        evidence_file=evidence))
    studio.consent.own_work(style.id, "Mira", [keep["id"]])
    run = add_run(studio, style.id, [image["sha256"], keep["sha256"]])
    clean_run = add_run(studio, style.id, [keep["sha256"]])
    style_dir = studio.workspace.style_dir(style.id)
    stored = (style_dir / image["stored_path"]).read_bytes()
    thumb = (style_dir / image["thumb_path"]).read_bytes()
    source = next(studio.workspace.upload_cache.glob("upload1-1/*")).read_bytes()
    root = studio.workspace.root
    assert all(files_containing(root, data) for data in (stored, thumb, source))

    report = studio.consent.erase([image["id"]], "deletion request from Ana, 3 May")

    assert report.failed == [] and report.flagged_runs == [run]
    assert files_containing(root, stored) == []
    assert files_containing(root, thumb) == []
    assert files_containing(root, source) == []
    assert not (studio.workspace.cache_dir(style.id) / image["sha256"]).exists()
    assert not (style_dir / evidence).exists()
    for table in ("images", "captions", "consents"):
        assert studio.store.get(table, image["id"]) is None
    assert studio.store.get("runs", run)["flags"] == [ERASED_FLAG]
    assert studio.store.get("runs", clean_run)["flags"] == []
    entry = next(a for a in studio.store.all("audit") if a["action"] == "consent.erase")
    text = json.dumps(entry)
    assert len(text) < 1000 and image["sha256"] in text and "deletion request" in text
    assert entry["at"] and "pixels" not in text and "base64" not in text
    # the other image and its copies are untouched
    assert (style_dir / keep["stored_path"]).is_file()
    assert len(files_containing(root, (style_dir / keep["stored_path"]).read_bytes())) == 2
    assert studio.consent.trainable(style.id).image_hashes == [keep["sha256"]]
    with pytest.raises(InvalidInput, match="Write why"):
        studio.consent.erase([keep["id"]], "")


def test_erasure_by_creator_in_one_style_or_all(studio, style):
    other_style = studio.styles.create("Oil nights", trigger="oilnight")
    ana1 = add_image(studio, style.id, "ana1.png", 1, meta={"creator": "Ana Pérez"})
    ana2 = add_image(studio, style.id, "ana2.png", 2)
    bo = add_image(studio, style.id, "bo.png", 3, meta={"creator": "Bo"})
    ana3 = add_image(studio, other_style.id, "ana3.png", 4, meta={"creator": "ana pérez"})
    studio.consent.set(ana2["id"], own(creator=" ana   PÉREZ ", relationship="licensed",
                                       licence="CC0-1.0"))
    assert studio.consent.creators(style.id) == {"Ana Pérez": 1, "ana PÉREZ": 1, "Bo": 1}

    report = studio.consent.erase_creator("Ana Pérez", "creator's request", style.id)
    assert sorted(r.image_id for r in report.erased) == sorted([ana1["id"], ana2["id"]])
    assert [c.image_id for c in studio.consent.for_style(style.id)] == [bo["id"]]
    assert studio.store.get("images", ana3["id"]) is not None
    report = studio.consent.erase_creator("ANA PÉREZ", "creator's request")
    assert [r.image_id for r in report.erased] == [ana3["id"]]
    with pytest.raises(NotFound, match="No image in any style"):
        studio.consent.erase_creator("Ana Pérez", "again")
    assert studio.store.get("images", bo["id"]) is not None


# -- overview and ledger ---------------------------------------------------------------------
def test_overview_counts_by_status_licence_and_creator(studio, style):
    images = [add_image(studio, style.id, f"{i}.png", i) for i in range(4)]
    studio.consent.own_work(style.id, "Mira", [images[0]["id"], images[1]["id"]])
    studio.consent.set(images[2]["id"], own(creator="Ana", relationship="licensed",
                                            licence="CC-BY-4.0", status="pending"))
    view = studio.consent.overview(style.id)
    assert view.total == 4 and view.trainable == 2
    assert view.by_status == {"cleared": 2, "pending": 1, "no record": 1}
    assert view.by_licence == {"Own work – all rights reserved": 2, "CC BY 4.0": 1}
    assert view.creators == {"Ana": 1, "Mira": 2, "unknown": 1}


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_ledger_export_import_round_trip(studio, style, tmp_path, suffix):
    images = [add_image(studio, style.id, f"{i}.png", i) for i in range(4)]
    studio.consent.own_work(style.id, "Mira Ko", [images[0]["id"]])
    studio.consent.set(images[1]["id"], own(
        creator="=HYPERLINK(\"http://x\")", relationship="licensed", licence="CC-BY-NC-4.0",
        source="https://example.org/a, b", notes="line one\nline \"two\", ü"))
    studio.consent.set(images[2]["id"], own(status="refused", reason="no, thanks"))
    before = {c.image_id: (c.saved, c.record) for c in studio.consent.for_style(style.id)}
    path = studio.consent.export_ledger(style.id, tmp_path / f"ledger{suffix}")
    exported = path.read_text(encoding="utf-8-sig")

    studio.consent.set_all(style.id, ConsentRecord(status="pending", creator="someone",
                                                   licence="LicenseRef-Custom", notes=""))
    report = studio.consent.import_ledger(style.id, path)

    assert report.skipped == []
    after = {c.image_id: (c.saved, c.record) for c in studio.consent.for_style(style.id)}
    assert {i: r for i, (_, r) in after.items()} == {i: r for i, (_, r) in before.items()}
    if suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(exported)))
        assert rows[1]["creator"] == "'=HYPERLINK(\"http://x\")"
        assert rows[3]["training"] == "no consent record" and rows[0]["training"] == "included"
    else:
        data = json.loads(exported)
        assert data["obligations"] == ["attribution required (CC BY): credit "
                                       "=HYPERLINK(\"http://x\")",
                                       "non-commercial use only (CC BY-NC)"]
        assert data["images"][0]["history"] == []
    studio.consent.erase(images[0]["id"], "request")
    report = studio.consent.import_ledger(style.id, path)
    assert "no image with this hash" in report.skipped[0][1]


def test_importing_something_that_is_not_a_ledger_says_so(studio, style, tmp_path):
    image = add_image(studio, style.id, "a.png", 1)
    junk = tmp_path / "notes.csv"
    junk.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInput, match="not a consent ledger"):
        studio.consent.import_ledger(style.id, junk)
    bad = tmp_path / "bad.csv"
    bad.write_text(f"sha256,licence,status\n{image['sha256']},CC-BY-ND,cleared\n")
    report = studio.consent.import_ledger(style.id, bad)
    assert report.changed == [] and "Unknown licence" in report.skipped[0][1]


def test_a_ledger_exported_with_the_old_licence_keys_still_imports(studio, style, tmp_path):
    image = add_image(studio, style.id, "a.png", 1)
    ledger = tmp_path / "old-ledger.csv"
    ledger.write_text(f"sha256,creator,relationship,licence,status\n{image['sha256']},"
                      "Mira Ko,own,own-work,cleared\n", encoding="utf-8")
    report = studio.consent.import_ledger(style.id, ledger)
    assert report.changed == [image["id"]]
    assert studio.consent.get(image["id"]).record.licence == "LicenseRef-OwnWork"


# -- dataset export --------------------------------------------------------------------------
def test_dataset_export_round_trips_the_ledger_and_leaves_refused_images_out(studio, style,
                                                                            tmp_path):
    from huggingface_hub import DatasetCard

    mine = add_image(studio, style.id, "mine.png", 1, caption="inkwash, a heron")
    ana = add_image(studio, style.id, "ana.png", 2, caption="inkwash, reeds at dawn")
    refused = add_image(studio, style.id, "refused.png", 3)
    revoked = add_image(studio, style.id, "revoked.png", 4)
    studio.consent.own_work(style.id, "Mira Ko", [mine["id"], revoked["id"]])
    studio.consent.set(ana["id"], own(creator="Ana Pérez", relationship="licensed",
                                      licence="CC BY 4.0"))
    studio.consent.set(refused["id"], own(status="refused", reason="no, thanks"))
    studio.consent.revoke(revoked["id"], "withdrawn on 3 May")

    export = studio.consent.export_dataset(style.id, tmp_path / "ink-dataset")

    assert (export.image_count, export.left_out) == (2, 2)
    rows = [json.loads(line) for line in
            (export.folder / "metadata.jsonl").read_text(encoding="utf-8").splitlines()]
    ledger = {row["sha256"]: row for row in json.loads(studio.consent.export_ledger(
        style.id, tmp_path / "ledger.json").read_text(encoding="utf-8"))["images"]}
    assert [row["sha256"] for row in rows] == [mine["sha256"], ana["sha256"]]
    for row in rows:
        entry = ledger[row["sha256"]]
        assert set(row) == {"file_name", "caption", "creator", "license", "sha256"}
        assert (row["creator"], row["license"]) == (entry["creator"], entry["licence"])
        assert entry["training"] == "included"
        assert sha256_bytes((export.folder / row["file_name"]).read_bytes()) == row["sha256"]
    assert [row["license"] for row in rows] == ["LicenseRef-OwnWork", "CC-BY-4.0"]
    assert rows[1]["caption"] == "inkwash, reeds at dawn"
    files = sorted(p.name for p in (export.folder / "images").iterdir())
    assert files == sorted(f"{row['sha256']}.png" for row in rows)
    everything = b"".join(p.read_bytes() for p in export.folder.rglob("*") if p.is_file())
    for left_out in (refused, revoked):
        assert left_out["sha256"].encode() not in everything
        assert left_out["filename"].encode() not in everything

    card = DatasetCard.load(export.folder / "README.md")
    assert card.data.license == "other" and card.data.license_name == "per-image-licences"
    assert card.data.license_link == "metadata.jsonl"
    assert "text-to-image" in card.data.task_categories
    assert "CC BY 4.0 (`CC-BY-4.0`): 1 image(s)" in card.text
    with zipfile.ZipFile(export.archive) as archive:
        assert sorted(archive.namelist()) == sorted(
            f"ink-dataset/{p.relative_to(export.folder).as_posix()}"
            for p in export.folder.rglob("*") if p.is_file())

    with pytest.raises(InvalidInput, match="already holds files"):
        studio.consent.export_dataset(style.id, export.folder)
    download = studio.consent.export_dataset_for_download(style.id)
    assert download.archive.is_relative_to(studio.workspace.upload_cache)
    # an erasure reaches every copy handed to the browser, as it does a ledger's
    studio.consent.erase(ana["id"], "deletion request")
    assert not download.archive.exists()
    assert [p.name for p in download.folder.rglob("*") if p.is_file()] == [
        f"{mine['sha256']}.png"]  # its metadata and card named the erased image


def test_dataset_export_of_one_cc_licence_names_it_and_refuses_an_empty_set(studio, style,
                                                                           tmp_path):
    from huggingface_hub import DatasetCard

    image = add_image(studio, style.id, "a.png", 1)
    with pytest.raises(GateRefused, match="No image of this style can be trained on"):
        studio.consent.export_dataset(style.id, tmp_path / "empty")
    assert not (tmp_path / "empty").exists()
    studio.consent.set(image["id"], own(creator="Ana", relationship="licensed",
                                        licence="CC-BY-SA-4.0"))
    export = studio.consent.export_dataset(style.id, tmp_path / "one")
    card = DatasetCard.load(export.folder / "README.md")
    assert card.data.license == "cc-by-sa-4.0" and "license_name" not in card.data.to_dict()
    assert "credit Ana" in card.text


XMP = f"""<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""
  xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/">
  <dc:creator><rdf:Seq><rdf:li>Mara Quill</rdf:li></rdf:Seq></dc:creator>
  <plus:DataMining rdf:resource="{PLUS}DMI-PROHIBITED-AIMLTRAINING"/>
 </rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_an_ingested_file_that_forbids_ai_training_is_refused_then_erased(studio, style,
                                                                          tmp_path):
    source = tmp_path / "quill.jpg"
    Image.open(io.BytesIO(_png(5, 64))).save(source, "JPEG", quality=90, xmp=XMP.encode())
    record = studio.images.ingest(style.id, [source]).added[0]
    consent = studio.consent.get(record.id)
    assert consent.record.creator == "Mara Quill" and consent.record.status == "refused"
    assert "prohibited for AI/ML training" in consent.record.reason
    studio.caption_records.set(record.id, "inkwash, a quill", approved=True)
    assert studio.consent.trainable(style.id).excluded[0].reason.startswith("consent refused")

    style_dir = studio.workspace.style_dir(style.id)
    copies = [(style_dir / rel).read_bytes() for rel in (record.stored_path, record.thumb_path)]
    studio.images.servable(record.id)  # what the page shows is a copy in the app's cache
    studio.consent.erase_creator("mara quill", "deletion request", style.id)
    assert not any(files_containing(studio.workspace.root, data) for data in copies)


def test_fewer_than_twenty_images_are_warned_about_not_refused(studio, style):
    for seed in range(3):
        add_image(studio, style.id, f"{seed}.png", seed)
    assert studio.consent.trainable(style.id).warnings == []  # nothing trainable: refused
    studio.consent.own_work(style.id, "Mira Ko")
    plan = studio.consent.trainable(style.id)
    plan.require()  # a warning, not a refusal
    assert len(plan.warnings) == 1
    assert "Only 3 images can be trained on; 20 to 150 are recommended" in plan.warnings[0]
    plenty = TrainingPlan(style.id, included=plan.included * 7)  # 21 images
    assert plenty.warnings == []
