"""Erasure reaches every copy (Gradio's cache, exports, the backup, run files) and no
restore of the database brings an erased image back."""

from __future__ import annotations

import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file
from training_helpers import add_cleared_images, shape_images, tiny_config, write_images

from style_studio.base.erasure import ERASED_FLAG
from style_studio.base.erasure_journal import ErasureJournal, JournalEntry
from style_studio.base.store import utc_now
from style_studio.base.workspace import Workspace
from style_studio.consent.records import ConsentRecord
from style_studio.playground.records import GenerateRequest
from style_studio.studio import Studio
from style_studio.training.export import DIFFUSERS_NAME


def _picture(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def test_zips_and_ledgers_in_the_cache_that_hold_the_image_are_erased(studio, style, tmp_path):
    report = studio.images.ingest(style.id, [_picture(tmp_path / "heron.png", 1),
                                             _picture(tmp_path / "reeds.png", 2)])
    heron, reeds = sorted(report.added, key=lambda r: r.filename)
    style_dir = studio.workspace.style_dir(style.id)
    heron_bytes = (style_dir / heron.stored_path).read_bytes()
    exports = studio.workspace.upload_cache / "exports"
    exports.mkdir(parents=True)
    with zipfile.ZipFile(exports / "both.zip", "w") as archive:
        archive.writestr("heron.png", heron_bytes)
        archive.writestr("reeds.png", (style_dir / reeds.stored_path).read_bytes())
    with zipfile.ZipFile(exports / "reeds-only.zip", "w") as archive:
        archive.writestr("reeds.png", (style_dir / reeds.stored_path).read_bytes())
    (exports / "ledger.csv").write_text(f"file,sha256\nheron.png,{heron.sha256}\n")
    (exports / "other.csv").write_text(f"file,sha256\nreeds.png,{reeds.sha256}\n")
    studio.store.insert("runs", {"style_id": style.id, "image_hashes": [heron.sha256],
                                 "flags": []})

    erased = studio.erasure.erase_image(heron.id, "deletion request")

    assert not (exports / "both.zip").exists()
    assert not (exports / "ledger.csv").exists()
    assert (exports / "reeds-only.zip").exists() and (exports / "other.csv").exists()
    assert str(exports / "both.zip") in erased.deleted_files
    assert [r["flags"] for r in studio.store.all("runs")] == [[ERASED_FLAG]]
    assert (style_dir / reeds.stored_path).exists()


def test_a_broken_zip_in_the_cache_does_not_stop_an_erasure(studio, style, tmp_path):
    report = studio.images.ingest(style.id, [_picture(tmp_path / "heron.png", 3)])
    (studio.workspace.upload_cache / "junk").mkdir(parents=True)
    (studio.workspace.upload_cache / "junk" / "broken.zip").write_bytes(b"PK\x03\x04broken")
    erased = studio.erasure.erase_image(report.added[0].id, "request")
    assert erased.deleted_files
    assert studio.store.get("images", report.added[0].id) is None


# -- a complete, durable erasure over everything the app writes ---------------------------
CAPTION = "heronstyle, a grey heron wading in silver reeds"
CREATOR = "Bea Client-Okafor"
REASON = "deletion request, email of 3 May"


@dataclass
class World:
    """A workspace in which one image went through everything, then was erased."""

    root: Path
    system_temp: Path
    style_id: str
    image_id: str
    sha256: str
    run_id: str
    needles: dict[str, bytes]
    before_erasure_db: bytes
    backup_after_erasure: bytes
    report: object
    exports: list[Path]
    output_pixels: np.ndarray
    output_after: np.ndarray


def _readable(path: Path) -> list[bytes]:
    """A file's bytes, plus what a zip or a PNG's text chunks hold in compressed form."""
    data = path.read_bytes()
    found = [data]
    try:
        with zipfile.ZipFile(path) as archive:
            found += [archive.read(info) for info in archive.infolist()]
    except (zipfile.BadZipFile, OSError, ValueError):
        pass
    if data.startswith(b"\x89PNG"):
        with Image.open(path) as image:
            found += [str(v).encode() for v in getattr(image, "text", {}).values()]
    return found


def holders(root: Path, needle: bytes) -> list[Path]:
    return sorted(p for p in root.rglob("*")
                  if p.is_file() and any(needle in part for part in _readable(p)))


def _render(studio, style_id: str, run_id: str) -> np.ndarray:
    request = GenerateRequest(style_id=style_id, run_id=run_id, prompt="heronstyle, a house",
                              seed=3, steps=2, width=64, height=64)
    output = studio.playground.generate(request, timeout=300)[0]
    return np.asarray(Image.open(output.path).convert("RGB"))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    tmp = tmp_path_factory.mktemp("erasure")
    system_temp = tmp / "system-temp"
    system_temp.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        # Everything that asks for "the system temp folder" gets this one, to search it.
        patch.setattr(tempfile, "tempdir", str(system_temp))
        patch.setenv("TMPDIR", str(system_temp))
        with Studio.open(tmp / "workspace") as studio:
            style = studio.styles.create("Herons", trigger="heronstyle", family="sd15")
            # uploaded as the browser does: into Gradio's cache, then imported from there
            sources = write_images(studio.workspace.upload_cache / "0a1b2c",
                                   shape_images(4, seed=3))
            needles_upload = sources[0].read_bytes()
            ids = add_cleared_images(studio, style.id, sources)
            target = ids[0]
            studio.caption_records.set(target, CAPTION, approved=True)
            studio.consent.set(target, ConsentRecord(
                creator=CREATOR, relationship="licensed", licence="CC-BY-4.0",
                status="cleared"))
            job = studio.jobs.wait(studio.training.start(
                style.id, tiny_config(sample_every=3), base_model="tiny-sd15").id, 600)
            assert job.status == "done", (job.error, job.log[-3:])
            run_id = job.result["run_id"]
            pixels = _render(studio, style.id, run_id)
            record = studio.store.get("images", target)
            style_dir = studio.workspace.style_dir(style.id)
            run_dir = studio.workspace.run_dir(style.id, run_id)
            # everything the app hands the browser, made the way the UI makes it
            studio.images.servable(target, "thumb")
            studio.images.servable(target, "full")
            for output in studio.playground.history(style.id):
                studio.workspace.browser_copy(output.path, "playground", "outputs")
            for name in ("README.md", "provenance.md", f"lora/{DIFFUSERS_NAME}"):
                studio.workspace.browser_copy(run_dir / name, "downloads", run_id)
            exports = [
                studio.captions.sidecars.export_for_download(style.id, include_images=True).path,
                studio.captions.sidecars.export_for_download(style.id).path,
                studio.consent.export_ledger_for_download(style.id, ".csv"),
                studio.consent.export_ledger_for_download(style.id, ".json"),
            ]
            needles = {"image": (style_dir / record["stored_path"]).read_bytes(),
                       "thumbnail": (style_dir / record["thumb_path"]).read_bytes(),
                       "upload": needles_upload, "caption": CAPTION.encode(),
                       "creator": CREATOR.encode()}
            root = studio.workspace.root
            # the test would prove nothing if the copies were not there to begin with (the
            # upload itself is gone already: an import deletes it from the cache)
            for name in ("image", "thumbnail", "caption", "creator"):
                assert holders(root, needles[name]), name
            for needle in ("caption", "creator"):
                assert holders(run_dir, needles[needle]), needle
            assert all(p.resolve().is_relative_to(studio.workspace.upload_cache)
                       for p in exports)
            before_db = studio.workspace.db_path.read_bytes()
            report = studio.consent.erase([target], REASON)
            backup = studio.store.backup_path.read_bytes()  # before any later write
            after = _render(studio, style.id, run_id)
        yield World(root, system_temp, style.id, target, record["sha256"], run_id, needles,
                    before_db, backup, report, exports, pixels, after)


def test_nothing_of_the_image_remains_in_the_workspace_or_the_system_temp_folder(world):
    for name, needle in world.needles.items():
        for root in (world.root, world.system_temp):
            assert holders(root, needle) == [], f"the {name} survives under {root}"
    assert world.report.failed == [] and world.report.flagged_runs == [world.run_id]
    assert not any(path.exists() for path in world.exports)


def test_only_the_places_docs_erasure_md_names_keep_the_hash(world):
    run = Path("styles", world.style_id, "runs", world.run_id)
    allowed = {Path("studio.json"), Path("studio.json.bak"), Path("erasures.jsonl"),
               run / "manifest.json"}
    for path in holders(world.root, world.sha256.encode()):
        rel = path.relative_to(world.root)
        # the LoRA files' metadata and their signed credentials (.c2pa) keep the hashes
        assert rel in allowed or (rel.is_relative_to(run)
                                  and rel.suffix in (".safetensors", ".c2pa")), rel
    journal = (world.root / "erasures.jsonl").read_text()
    assert world.sha256 in journal and world.image_id in journal
    assert set(json.loads(journal.splitlines()[-1])) == {
        "format", "at", "image_id", "style_id", "sha256", "source_sha256", "thumb_sha256"}
    assert (world.root / "erasures.jsonl").stat().st_mode & 0o077 == 0


def test_the_backup_holds_no_trace_of_the_erased_records(world):
    backup = world.backup_after_erasure.decode("utf-8")
    data = json.loads(backup)
    for table in ("images", "captions", "consents", "caption_undo"):
        assert all(doc["id"] != world.image_id for doc in data.get(table, {}).values()), table
    assert CAPTION not in backup and CREATOR not in backup
    assert world.image_id in world.before_erasure_db.decode()  # it was there before


def test_run_files_are_redacted_keep_hashes_and_still_load(world):
    run_dir = world.root / "styles" / world.style_id / "runs" / world.run_id
    label = f"[erased {utc_now()[:10]}]"
    manifest = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    erased = next(i for i in manifest["images"] if i["sha256"] == world.sha256)
    assert erased["caption"] == erased["creator"] == label
    assert manifest["creators"] == sorted(["Ana Artist", label])
    assert manifest["obligations"][0].endswith(f"credit {label}")
    card = (run_dir / "README.md").read_text(encoding="utf-8")
    assert "Contains erased data" in card and "retrain" in card and label in card
    assert ModelCard(card).data.tags[-1] == "contains-erased-data"
    report = (run_dir / "provenance.md").read_text(encoding="utf-8")
    assert label in report and world.sha256[:16] in report
    assert "Flag: contains erased data" in report
    for path in run_dir.rglob("*.safetensors"):
        with safe_open(str(path), "pt") as handle:
            meta = handle.metadata() or {}
        if "style_studio.manifest_sha256" in meta:
            assert world.sha256 in json.loads(meta["style_studio.image_hashes"])
            assert label in json.loads(meta["style_studio.creators"])
            assert "Contains erased data" in meta["style_studio.notice"]
        assert load_file(path)  # tensors intact
    # the LoRA's weights are untouched: the same request draws the same picture
    assert np.array_equal(world.output_pixels, world.output_after)


def _reopen_damaged(world: World, tmp_path: Path, backup: bytes | None = None) -> Studio:
    """A copy of the workspace whose studio.json broke (and whose backup is `backup`)."""
    root = tmp_path / "copy"
    shutil.copytree(world.root, root)
    if backup is not None:
        (root / "studio.json.bak").write_bytes(backup)
    (root / "studio.json").write_text('{"images": {"1": {"id": "trunc')
    return Studio.open(root)


def _still_erased(studio: Studio, world: World) -> None:
    for table in ("images", "captions", "consents", "caption_undo"):
        assert studio.store.get(table, world.image_id) is None, table
    assert ERASED_FLAG in studio.store.get("runs", world.run_id)["flags"]
    backup = studio.store.backup_path.read_text(encoding="utf-8")
    assert CAPTION not in backup and CREATOR not in backup


def test_a_damaged_database_restored_from_backup_stays_erased(world, tmp_path):
    with _reopen_damaged(world, tmp_path) as studio:
        assert any("restored from its backup" in n for n in studio.notices)
        _still_erased(studio, world)


def test_a_restore_from_a_backup_older_than_the_erasure_is_erased_again(world, tmp_path):
    """The worst case: the backup predates the erasure (a crash between the database write
    and the backup rewrite, or the artist's own copy); the journal erases it again."""
    with _reopen_damaged(world, tmp_path, backup=world.before_erasure_db) as studio:
        assert any("erasure journal was applied again" in n for n in studio.notices)
        _still_erased(studio, world)
        assert studio.store.find("audit", action="erasure.reapply")
        root = studio.workspace.root
        for name in ("caption", "creator", "image", "thumbnail"):
            assert holders(root, world.needles[name]) == [], name
    database = (root / "studio.json").read_bytes()
    with Studio.open(root) as studio:  # and once is enough: the next open has nothing to do
        assert not any("journal" in n for n in studio.notices)
    assert (root / "studio.json").read_bytes() == database


def test_files_for_the_browser_are_made_inside_the_upload_cache(tmp_path):
    workspace = Workspace(tmp_path / "ws").ensure()
    cache = workspace.upload_cache.resolve()
    for kind, key in (("ledgers", None), ("../../etc", "../x"), ("downloads", "run1")):
        assert workspace.browser_dir(kind, key).resolve().is_relative_to(cache)
    assert workspace.browser_dir("a") != workspace.browser_dir("a")  # one folder per download
    source = tmp_path / "lora.safetensors"
    source.write_bytes(b"v1")
    copy = workspace.browser_copy(source, "downloads", "run1")
    assert copy.read_bytes() == b"v1"
    assert workspace.browser_copy(source, "downloads", "run1") == copy
    source.write_bytes(b"v2 redacted")  # a changed source is copied again
    assert workspace.browser_copy(source, "downloads", "run1").read_bytes() == b"v2 redacted"
    ui = Path(__file__).resolve().parents[1] / "style_studio" / "ui"
    assert [p.name for p in ui.glob("*.py") if "tempfile" in p.read_text()] == []


def test_the_journal_skips_a_line_torn_by_a_crash(tmp_path):
    journal = ErasureJournal(tmp_path / "erasures.jsonl")
    entry = JournalEntry(at="2025-05-03T10:00:00+00:00", image_id="img1", style_id="s1",
                         sha256="ab" * 32)
    journal.append(entry)
    with open(journal.path, "a") as handle:
        handle.write('{"at": "2025-05-04", "image_id": "im')
    assert journal.entries() == [entry]
    journal.append(entry)
    assert journal.entries() == [entry, entry]
