"""Erasure reaches exports the app left in Gradio's cache, not only loose copies."""

from __future__ import annotations

import zipfile

import numpy as np
from PIL import Image

from style_studio.erasure import ERASED_FLAG


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
