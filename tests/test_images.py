"""Images: ingest, validate, normalise, de-duplicate and curate.

Every test builds its files in code: a catalogue of bad inputs, the conversions an
artist's files need, zips that try to escape, duplicates, sidecar captions.
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from image_files import (
    XMP,
    animated_gif,
    bad_files,
    bomb_zip,
    cmyk_jpeg,
    deep_png,
    escaping_zip,
    gps_image,
    huge_png,
    jpeg_bytes,
    link_zip,
    palette_png,
    picture,
    png_bytes,
    png_with_text_chunk,
    save,
    turned_jpeg,
    with_iptc,
)
from PIL import Image, ImageDraw, ImageFilter

from style_studio.base.errors import InvalidInput, NotFound
from style_studio.base.files import sha256_bytes, sha256_file
from style_studio.captions.records import CaptionOrigin
from style_studio.images.checks import GPS_REMOVED, IngestLimits
from style_studio.images.perceptual import hamming
from style_studio.images.service import INGEST_JOB, IngestReport


def stored(studio, record) -> Path:
    return studio.workspace.style_dir(record.style_id) / record.stored_path


def reasons(report: IngestReport) -> dict[str, str]:
    return {Path(name).name: reason for name, reason in report.rejected}


@pytest.fixture
def inputs(tmp_path) -> Path:
    folder = tmp_path / "inputs"
    folder.mkdir()
    return folder


# -- good files, stored safely ---------------------------------------------------------------


def test_each_accepted_format_is_stored_under_its_hash_with_a_thumbnail(studio, style, inputs):
    files = [save(picture(1), inputs / "one.jpg", quality=90),
             save(picture(2), inputs / "two.png"),
             save(picture(3), inputs / "three.webp", quality=90),
             save(picture(4), inputs / "four.bmp"),
             save(picture(5), inputs / "five.tiff"),
             save(picture(6).convert("P"), inputs / "six.gif")]
    sources = {p.name: sha256_file(p) for p in files}
    report = studio.images.ingest(style.id, files)

    assert report.rejected == [] and report.duplicates == []
    assert [r.filename for r in report.added] == [p.name for p in files]
    for record in report.added:
        path = stored(studio, record)
        assert path.name == f"{record.sha256}.{'jpg' if record.format == 'JPEG' else 'png'}"
        assert sha256_file(path) == record.sha256
        assert record.source_sha256 == sources[record.filename]
        thumb = studio.workspace.style_dir(style.id) / record.thumb_path
        assert sha256_file(thumb) == record.thumb_sha256
        with Image.open(thumb) as im:
            assert im.format == "WEBP" and max(im.size) <= 384
        with Image.open(path) as im:
            assert im.mode == "RGB" and im.size == (record.width, record.height) == (640, 512)
        assert len(record.phash) == 16
    assert {r.format for r in report.added} == {"JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"}
    assert len(studio.images.list(style.id)) == 6
    assert studio.store.find("audit", action="image.import")


def test_plain_jpeg_is_stored_losslessly_without_its_metadata(studio, style, inputs):
    exif = Image.Exif()
    exif[0x013B] = "Jane Painter"
    source = inputs / "camera.jpg"
    source.write_bytes(jpeg_bytes(picture(7), exif=exif, comment=b"shot on a phone"))
    record = studio.images.ingest(style.id, [source]).added[0]

    data = stored(studio, record).read_bytes()
    assert b"Exif" not in data and b"shot on a phone" not in data
    with Image.open(stored(studio, record)) as kept, Image.open(source) as original:
        assert np.array_equal(np.asarray(kept), np.asarray(original))  # not re-encoded
    assert record.source_sha256 != record.sha256
    assert record.source_meta["creator"] == "Jane Painter"


# -- the bad-input catalogue --------------------------------------------------------------


def test_bad_input_catalogue_is_rejected_file_by_file_and_the_batch_goes_on(studio, style,
                                                                           inputs):
    files = [*bad_files(inputs), save(picture(9), inputs / "fine.png")]

    report = studio.images.ingest(style.id, files)
    why = reasons(report)
    assert [r.filename for r in report.added] == ["fine.png"]
    assert "empty" in why["empty.jpg"] and "0 bytes" in why["empty.jpg"]
    assert "truncated" in why["truncated.jpg"]
    assert "HTML" in why["page.png"] and "not an image" in why["page.png"]
    assert "too large" in why["bomb.png"] and "decompression bomb" in why["bomb.png"]
    assert "400 megapixels" in why["bomb.png"]
    assert "PDF" in why["notes.pdf"]
    assert len(studio.store.find("images", style_id=style.id)) == 1
    assert len(list(studio.workspace.images_dir(style.id).iterdir())) == 1


@pytest.mark.parametrize("kind", [b"zTXt", b"iTXt"])
def test_a_huge_metadata_text_chunk_is_named_plainly(studio, style, inputs, kind):
    """20 MB of text in a 20 KB PNG: Pillow refuses to unpack it; say so, not "damaged"."""
    png = png_with_text_chunk(inputs / "chatty.png", kind)
    assert png.stat().st_size < 100_000
    report = studio.images.ingest(style.id, [png])
    why = reasons(report)["chatty.png"]
    assert "metadata text chunk too large to read safely" in why
    assert "without its metadata" in why  # what to do about it
    assert "damaged" not in why and "MAX_TEXT" not in why and "Decompressed" not in why
    assert report.added == []


def test_pixel_limit_is_lower_than_pillows_and_read_from_the_header(studio, style, inputs):
    bomb = huge_png(inputs / "wide.png", width=9000, height=8000)  # 72 MP < Pillow's 89 MP
    report = studio.images.ingest(style.id, [bomb])
    assert "too large" in reasons(report)["wide.png"]
    assert "64 MP" in reasons(report)["wide.png"]


def test_cmyk_16_bit_palette_transparency_and_animation_become_rgb(studio, style, inputs):
    cmyk, deep = cmyk_jpeg(inputs / "cmyk.jpg"), deep_png(inputs / "deep.png")
    transparent = palette_png(inputs / "palette.png")
    grey_alpha = Image.new("LA", (600, 600), (0, 0))
    ImageDraw.Draw(grey_alpha).rectangle([0, 0, 299, 599], fill=(40, 255))
    la = save(grey_alpha, inputs / "grey_alpha.png")
    gif = animated_gif(inputs / "anim.gif")

    report = studio.images.ingest(style.id, [cmyk, deep, transparent, la, gif])
    assert report.rejected == []
    got = {r.filename: r for r in report.added}

    def pixels(name: str) -> np.ndarray:
        with Image.open(stored(studio, got[name])) as im:
            assert im.mode == "RGB"
            return np.asarray(im).astype(int)

    assert np.abs(pixels("cmyk.jpg")[300, 300] - [255, 0, 0]).max() < 30
    assert "CMYK converted to RGB" in got["cmyk.jpg"].normalised
    deep_row = pixels("deep.png")[0, :, 0]
    assert deep_row[0] == 0 and deep_row[-1] == 255 and 120 <= deep_row[300] <= 135  # scaled
    assert "16-bit image converted to 8-bit RGB" in got["deep.png"].normalised
    assert pixels("palette.png")[10, 10].tolist() == [255, 255, 255]  # transparent -> white
    assert pixels("palette.png")[10, 500].tolist() == [255, 0, 0]
    assert pixels("grey_alpha.png")[10, 10].tolist() == [40, 40, 40]
    assert pixels("grey_alpha.png")[10, 500].tolist() == [255, 255, 255]
    assert "transparent areas were filled with white" in got["palette.png"].normalised
    first = pixels("anim.gif")[300, 300]
    assert first[1] > 100 and first[0] < 50  # green: the first frame
    assert any("only the first frame" in n for n in got["anim.gif"].normalised)
    assert got["anim.gif"].stored_path.endswith(".png")


def test_exif_orientation_6_is_stored_upright(studio, style, inputs):
    path = turned_jpeg(inputs / "turned.jpg")

    record = studio.images.ingest(style.id, [path]).added[0]
    assert (record.width, record.height) == (480, 640)
    with Image.open(stored(studio, record)) as upright:
        assert upright.size == (480, 640)
        assert upright.getexif().get(0x0112) is None
        top, bottom = upright.getpixel((240, 100)), upright.getpixel((240, 540))
    assert top[0] > 200 and top[2] < 60       # the red half is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert "turned upright (EXIF orientation 6)" in record.normalised


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_gps_is_stripped_from_the_stored_copy_but_creator_is_kept(studio, style, inputs, fmt):
    path = gps_image(inputs / f"walk.{fmt.lower()}", fmt)
    with Image.open(path) as im:
        assert im.getexif().get_ifd(0x8825)  # the upload really carries GPS

    record = studio.images.ingest(style.id, [path]).added[0]
    with Image.open(stored(studio, record)) as im:
        assert not im.getexif().get_ifd(0x8825)
        assert len(im.getexif()) == 0
    assert b"Exif" not in stored(studio, record).read_bytes()
    assert record.source_meta["creator"] == "Jane Painter"
    assert record.source_meta["copyright"] == "(c) 2024 Jane Painter"
    assert GPS_REMOVED in record.normalised  # and the artist is told (details, report)


def test_the_import_report_says_which_images_had_a_location_removed(studio, style, inputs):
    plain = save(picture(3), inputs / "plain.jpg")
    report = studio.images.ingest(style.id, [gps_image(inputs / "walk.jpg"), plain])
    assert [n for n in report.notices if GPS_REMOVED in n] == [
        "GPS location removed from 1 image: walk.jpg. The stored copies keep no metadata."]
    got = {r.filename: r.normalised for r in report.added}
    assert GPS_REMOVED in got["walk.jpg"] and GPS_REMOVED not in got["plain.jpg"]


def test_xmp_and_iptc_creator_rights_and_data_mining_are_kept(studio, style, inputs):
    xmp_file = inputs / "xmp.jpg"
    xmp_file.write_bytes(jpeg_bytes(picture(11), xmp=XMP.encode()))
    iptc_file = inputs / "iptc.jpg"
    iptc_file.write_bytes(with_iptc(jpeg_bytes(picture(12)), b"Ola Byline", b"(c) Ola"))

    got = {r.filename: r for r in studio.images.ingest(style.id, [xmp_file, iptc_file]).added}
    assert got["xmp.jpg"].source_meta == {
        "creator": "Mara Quill", "copyright": "All rights reserved", "credit": "Studio North",
        "data_mining": "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"}
    assert any("may not be used for AI training" in w for w in got["xmp.jpg"].warnings)
    assert got["iptc.jpg"].source_meta["creator"] == "Ola Byline"
    assert got["iptc.jpg"].source_meta["copyright"] == "(c) Ola"
    assert b"Mara Quill" not in stored(studio, got["xmp.jpg"]).read_bytes()
    assert b"Ola Byline" not in stored(studio, got["iptc.jpg"]).read_bytes()


# -- zips, folders and the workspace boundary -------------------------------------------------


def outside(tmp_path: Path) -> dict[Path, float]:
    """Every file and folder under the test's folder except the workspace, with mtimes."""
    return {p: p.stat().st_mtime for p in tmp_path.rglob("*") if "workspace" not in p.parts}


def test_zip_names_that_escape_are_refused(studio, style, tmp_path, inputs):
    archive = escaping_zip(inputs / "pack.zip")
    before = outside(tmp_path)

    report = studio.images.ingest(style.id, [archive])
    assert [r.filename for r in report.added] == ["heron.png"]
    assert report.added[0].source == "pack.zip/herons/heron.png"
    assert studio.caption_records.get(report.added[0].id).text == "a heron standing in reeds"
    why = dict(report.rejected)
    for name in ("pack.zip/../escaped.png", "pack.zip//abs/rooted.png",
                 "pack.zip/..\\windows.png"):
        assert "outside the archive" in why[name]
    assert outside(tmp_path) == before
    assert not (tmp_path / "escaped.png").exists() and not Path("/abs/rooted.png").exists()
    assert "1 hidden or system file(s)" in " ".join(report.notices)


def test_a_link_inside_a_zip_is_refused_as_a_link(studio, style, tmp_path, inputs):
    archive = link_zip(inputs / "links.zip")
    report = studio.images.ingest(style.id, [archive])
    assert [r.filename for r in report.added] == ["real.png"]
    why = dict(report.rejected)
    for name in ("links.zip/shortcut.png", "links.zip/real.txt"):
        assert "symbolic link" in why[name] and "text file" not in why[name]
    assert report.captions_imported == 0  # the link named like a caption is not read
    assert studio.caption_records.get(report.added[0].id) is None


def test_an_import_leaves_no_scratch_folder_and_no_empty_files(studio, style, inputs):
    """Unpacked zip entries live in `.incoming/<run>/` only while the import runs."""
    archive = inputs / "mixed.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("one.png", png_bytes(picture(26, (96, 96))))
        zf.writestr("one.txt", "inkwash, a kettle")
        zf.writestr("empty.png", b"")
        zf.writestr("broken.jpg", b"\xff\xd8\xff not really")
    upload = studio.workspace.upload_cache / "ab12" / "mixed.zip"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(archive.read_bytes())
    for paths in ([archive], [upload]):
        report = studio.images.ingest(style.id, paths)
        assert len(report.added) + len(report.duplicates) == 1 and len(report.rejected) == 2
    style_dir = studio.workspace.style_dir(style.id)
    assert not (style_dir / ".incoming").exists()
    root = studio.workspace.root
    assert [p for p in root.rglob("*") if p.is_file() and p.stat().st_size == 0] == []
    assert [p for p in style_dir.rglob("*") if p.is_dir() and not any(p.iterdir())] == []
    assert not upload.exists() and not any(studio.workspace.upload_cache.iterdir())


def test_the_whole_catalogue_in_one_import_writes_only_inside_the_workspace(
        studio, style, tmp_path, inputs, monkeypatch):
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))  # where tempfile would write
    series = inputs / "series"
    series.mkdir()
    good = [cmyk_jpeg(inputs / "cmyk.jpg"), deep_png(inputs / "deep.png"),
            palette_png(inputs / "palette.png"), animated_gif(inputs / "anim.gif"),
            turned_jpeg(inputs / "turned.jpg"), gps_image(inputs / "gps.jpg"),
            save(picture(18), series / "a.png")]
    (series / "a.txt").write_text("inkwash, a crane")
    copy = inputs / "copy.jpg"
    copy.write_bytes(good[0].read_bytes())
    resized = save(picture(18).resize((320, 256)), inputs / "a-small.png")
    files = [*bad_files(inputs), *good[:-1], series, copy, resized,
             escaping_zip(inputs / "pack.zip"), bomb_zip(inputs / "bomb.zip")]
    before = outside(tmp_path)

    report = studio.images.ingest(style.id, files)
    assert len(report.added) == 7 + 1 + 2  # good files, the resized copy, two from zips
    assert len(report.rejected) == 5 + 3 + 1  # bad files, escaping entries, the zip bomb
    assert report.duplicates == [("copy.jpg", report.added[0].id)]
    assert report.captions_imported == 2
    assert sum(bool(r.near_duplicates) for r in studio.images.list(style.id)) == 2
    assert outside(tmp_path) == before  # nothing new or changed next to the inputs
    assert not any(system_tmp.iterdir())  # nothing in the system's temp folder
    assert not (studio.workspace.style_dir(style.id) / ".incoming").exists()
    written = {p.relative_to(studio.workspace.style_dir(style.id)).parts[0]
               for p in studio.workspace.style_dir(style.id).rglob("*") if p.is_file()}
    assert written == {"images", "thumbs"}


def test_oversized_zips_and_zip_bombs_are_refused_before_unpacking(studio, style, inputs):
    bomb = bomb_zip(inputs / "bomb.zip")
    many = inputs / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for number in range(12):
            zf.writestr(f"img{number}.png", png_bytes(picture(number, (64, 64))))

    report = studio.images.ingest(style.id, [bomb])
    assert [r.filename for r in report.added] == ["fine.png"]
    assert "zip bomb" in dict(report.rejected)["bomb.zip/huge.png"]

    studio.images.limits = IngestLimits(max_zip_entries=10)
    report = studio.images.ingest(style.id, [many])
    assert report.added == []
    assert "12 files" in dict(report.rejected)["many.zip"]
    studio.images.limits = IngestLimits(max_zip_bytes=20_000)
    report = studio.images.ingest(style.id, [many])
    assert "unpacks to" in dict(report.rejected)["many.zip"]
    assert list(studio.workspace.images_dir(style.id).iterdir()) == [
        stored(studio, studio.images.list(style.id)[0])]


def test_folder_import_recurses_pairs_sidecars_and_skips_system_files(studio, style, inputs):
    save(picture(18), inputs / "series" / "a.png")
    (inputs / "series" / "a.txt").write_text("inkwash, a crane at dawn\n", encoding="utf-8")
    save(picture(19), inputs / "series" / "deeper" / "b.jpg")
    (inputs / "series" / "deeper" / "orphan.txt").write_text("no image for me")
    (inputs / "series" / ".DS_Store").write_bytes(b"\x00\x01")

    report = studio.images.ingest(style.id, [inputs / "series"])
    assert sorted(r.filename for r in report.added) == ["a.png", "b.jpg"]
    assert report.captions_imported == 1
    caption = studio.caption_records.get(next(r.id for r in report.added if r.filename == "a.png"))
    assert caption.text == "inkwash, a crane at dawn"
    assert caption.status == "draft" and caption.origin == CaptionOrigin(kind="imported")
    assert "no image of the same name" in dict(report.rejected)["series/deeper/orphan.txt"]
    assert (inputs / "series" / "a.png").exists()  # the artist's own files are never touched


def test_sidecar_captions_pair_with_uploaded_files_by_name(studio, style, inputs):
    image = save(picture(20), inputs / "up1" / "Heron.PNG")
    text = inputs / "up2" / "heron.txt"
    text.parent.mkdir()
    text.write_bytes("une h\u00e9ronni\u00e8re".encode("cp1252"))
    report = studio.images.ingest(style.id, [image, text])
    assert report.captions_imported == 1
    assert studio.caption_records.get(report.added[0].id).text == "une h\u00e9ronni\u00e8re"


def test_uploaded_copies_in_the_gradio_cache_are_deleted_after_import(studio, style, inputs):
    cache = studio.workspace.upload_cache
    uploads = [save(picture(21), cache / "a1b2" / "one.png"),
               save(picture(21), cache / "c3d4" / "dup.png"),
               cache / "e5f6" / "bad.jpg"]
    uploads[2].parent.mkdir()
    uploads[2].write_bytes(b"nonsense")
    own = save(picture(22), inputs / "mine.png")

    report = studio.images.ingest(style.id, [*uploads, own])
    assert len(report.added) == 2 and len(report.duplicates) == 1 and len(report.rejected) == 1
    assert not any(p.exists() for p in uploads)
    assert not any(cache.iterdir())
    assert own.exists()
    unused = save(picture(23), cache / "g7h8" / "unused.png")
    studio.discard_uploads([unused, own])  # e.g. uploaded before a style was chosen
    assert not unused.exists() and not any(cache.iterdir()) and own.exists()


# -- duplicates ----------------------------------------------------------------------------


def test_exact_duplicates_are_skipped_and_resized_copies_flagged(studio, style, inputs):
    original = save(picture(23, (800, 640)), inputs / "original.png")
    same = inputs / "copy of original.png"
    same.write_bytes(original.read_bytes())
    resized = save(picture(23, (800, 640)).resize((560, 448), Image.Resampling.LANCZOS),
                   inputs / "smaller.jpg", quality=85)
    unrelated = [save(picture(seed, (800, 640)), inputs / f"other{seed}.png")
                 for seed in range(30, 38)]

    report = studio.images.ingest(style.id, [original, same, resized, *unrelated])
    ids = {r.filename: r.id for r in report.added}
    assert report.duplicates == [("copy of original.png", ids["original.png"])]
    records = {r.filename: r for r in studio.images.list(style.id)}
    assert records["original.png"].near_duplicates == [ids["smaller.jpg"]]
    assert records["smaller.jpg"].near_duplicates == [ids["original.png"]]
    assert all(not records[p.name].near_duplicates for p in unrelated)
    pairs = studio.images.near_duplicate_pairs(style.id)
    assert len(pairs) == 1 and pairs[0].distance <= 6

    again = studio.images.ingest(style.id, [original])  # a later import finds it too
    assert again.added == [] and again.duplicates == [("original.png", ids["original.png"])]
    later = studio.images.ingest(style.id, [save(picture(23, (800, 640)).resize((400, 320)),
                                                  inputs / "tiny copy.webp")])
    assert sorted(later.added[0].near_duplicates) == sorted(
        [ids["original.png"], ids["smaller.jpg"]])
    assert later.added[0].id in studio.images.get(ids["original.png"]).near_duplicates


def test_unrelated_pictures_have_distant_hashes(studio, style, inputs):
    hashes = [studio.images.ingest(style.id, [save(picture(s), inputs / f"{s}.png")])
              .added[0].phash for s in range(40, 52)]
    distances = [hamming(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1:]]
    assert min(distances) > 6


def test_flat_colour_images_are_not_near_duplicates_of_each_other(studio, style, inputs):
    flats = [save(Image.new("RGB", (600, 600), colour), inputs / f"{colour}.png")
             for colour in ("white", "gray", "red", "silver", "black")]
    report = studio.images.ingest(style.id, flats)
    assert len(report.added) == 5
    assert studio.images.near_duplicate_pairs(style.id) == []


def test_keep_both_and_drop_a_near_duplicate(studio, style, inputs):
    a = save(picture(24), inputs / "a.png")
    b = save(picture(24).resize((480, 384)), inputs / "b.jpg")
    c = save(picture(25), inputs / "c.png")
    d = save(picture(25).resize((320, 256)), inputs / "d.png")
    ids = {r.filename: r.id for r in studio.images.ingest(style.id, [a, b, c, d]).added}
    assert len(studio.images.near_duplicate_pairs(style.id)) == 2

    studio.images.keep_both(ids["a.png"], ids["b.jpg"])
    pairs = studio.images.near_duplicate_pairs(style.id)
    assert [(p.first.filename, p.second.filename) for p in pairs] == [("c.png", "d.png")]
    studio.images.remove(ids["d.png"], reason="near-duplicate dropped")
    assert studio.images.near_duplicate_pairs(style.id) == []
    assert studio.images.get(ids["c.png"]).near_duplicates == []
    assert studio.images.summary(style.id).near_duplicates == 0


# -- curation: warnings, summary, filters, removal -----------------------------------------------


def test_quality_warnings_follow_the_base_model_family(studio, style, inputs):
    small = save(picture(26, (400, 300)), inputs / "small.png")
    mid = save(picture(27, (800, 700)), inputs / "mid.png")
    wide = save(picture(28, (1800, 600)), inputs / "wide.png")
    soft = save(picture(29, (800, 600)).filter(ImageFilter.GaussianBlur(6)), inputs / "soft.png")
    got = {r.filename: r for r in studio.images.ingest(style.id, [small, mid, wide, soft]).added}

    assert any("small for Stable Diffusion 1.x" in w for w in got["small.png"].warnings)
    assert got["mid.png"].warnings == []
    assert any("extreme aspect ratio (3.0:1)" in w for w in got["wide.png"].warnings)
    assert any("blurry" in w for w in got["soft.png"].warnings)
    assert not any("blurry" in w for r in got.values() if r.filename != "soft.png"
                   for w in r.warnings)
    studio.styles.update(style.id, family="sdxl")
    mid_item = next(i for i in studio.images.items(style.id) if i.record.filename == "mid.png")
    assert any("small for Stable Diffusion XL" in w for w in mid_item.warnings)


def test_summary_line_badges_and_filters(studio, style, inputs):
    files = [save(picture(seed, (640, 640)), inputs / f"{name}.png")
             for seed, name in ((60, "done"), (61, "draft"), (62, "bare"))]
    files.append(save(picture(62, (640, 640)).resize((600, 600)), inputs / "bare-copy.png"))
    ids = {r.filename: r.id for r in studio.images.ingest(style.id, files).added}
    studio.caption_records.set(ids["done.png"], "inkwash, a boat", approved=True)
    studio.caption_records.set(ids["draft.png"], "inkwash, a bridge")
    studio.store.insert("consents", {"id": ids["done.png"], "style_id": style.id,
                                     "status": "cleared"})
    studio.store.insert("consents", {"id": ids["draft.png"], "style_id": style.id,
                                     "status": "refused"})

    summary = studio.images.summary(style.id)
    assert summary.text == "4 images; 3 need captions; 2 need consent; 1 near-duplicate"
    names = {which: sorted(i.record.filename for i in studio.images.items(style.id, which))
             for which in ("all", "needs caption", "needs consent", "flagged")}
    assert names["needs caption"] == ["bare-copy.png", "bare.png", "draft.png"]
    assert names["needs consent"] == ["bare-copy.png", "bare.png"]
    assert names["flagged"] == ["bare-copy.png", "bare.png", "draft.png"]
    badges = {i.record.filename: i.badges() for i in studio.images.items(style.id)}
    assert badges["done.png"] == "caption ✓ · consent ✓"
    assert badges["draft.png"] == "draft caption · consent refused"
    assert badges["bare.png"] == "no caption · no consent · ≈ near-duplicate"
    single = studio.images.summary
    studio.images.remove(ids["bare-copy.png"])
    studio.images.remove(ids["draft.png"])
    assert single(style.id).text == "2 images; 1 needs a caption; 1 needs consent"


def test_remove_leaves_nothing_of_the_image_on_disk_and_audits_it(studio, style, inputs):
    keep = save(picture(63), inputs / "keep.png")
    gone = inputs / "gone.jpg"
    gone.write_bytes(jpeg_bytes(picture(64)))
    (inputs / "gone.txt").write_text("a caption")
    ids = {r.filename: r.id for r in studio.images.ingest(style.id, [keep, gone,
                                                                   inputs / "gone.txt"]).added}
    record = studio.images.get(ids["gone.jpg"])
    served = [studio.images.servable(record.id), studio.images.servable(record.id, "stored")]
    assert all(p.exists() for p in served)
    assert sha256_file(served[0]) == record.thumb_sha256

    report = studio.images.remove(record.id, reason="the client asked")
    hashes = {record.sha256, record.source_sha256, record.thumb_sha256}
    left = [p for p in studio.workspace.root.rglob("*")
            if p.is_file() and p.name != "studio.json" and not p.name.startswith("studio.json")
            and (sha256_file(p) in hashes or any(h in p.name for h in hashes))]
    assert left == []
    assert report.deleted_files
    with pytest.raises(NotFound):
        studio.images.get(record.id)
    assert studio.caption_records.get(record.id) is None
    audit = studio.store.find("audit", action="image.remove")
    assert audit[0]["details"]["reason"] == "the client asked"
    assert audit[0]["details"]["sha256"] == record.sha256
    assert [r.filename for r in studio.images.list(style.id)] == ["keep.png"]


# -- as a job ----------------------------------------------------------------------------


def test_import_runs_as_a_job_with_progress_and_a_readable_result(studio, style, inputs):
    files = [save(picture(s), inputs / f"{s}.png") for s in range(70, 73)]
    (inputs / "bad.gif").write_bytes(b"GIF89a broken")
    job = studio.images.start_ingest(style.id, [*files, inputs / "bad.gif"])
    done = studio.jobs.wait(job.id, timeout=60)
    assert done.status == "done" and done.kind == INGEST_JOB and done.progress == 1.0
    report = IngestReport.from_dict(done.result)
    assert len(report.added) == 3 and report.rejected[0].filename == "bad.gif"
    assert report.headline == "3 added, 1 rejected"
    assert studio.images.last_import(style.id).id == job.id


def test_a_stopped_import_keeps_what_it_already_imported(studio, style, inputs):
    files = [save(picture(s), studio.workspace.upload_cache / f"u{s}" / f"{s}.png")
             for s in range(80, 85)]
    calls = []

    def stop_after_two() -> bool:
        calls.append(1)
        return len(calls) > 2

    report = studio.images.ingest(style.id, files, should_stop=stop_after_two)
    assert report.stopped and len(report.added) == 2
    assert "3 file(s) were not checked" in report.notices[0]
    assert len(studio.images.list(style.id)) == 2
    assert not any(p.exists() for p in files)  # no upload copy lingers


def test_progress_is_reported_per_file(studio, style, inputs):
    files = [save(picture(s, (96, 96)), inputs / f"{s}.png") for s in range(90, 94)]
    seen = []
    studio.images.ingest(style.id, files, progress=lambda f, m: seen.append((f, m)))
    assert [f for f, _ in seen] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert seen[1][1] == "Checking 91.png (2 of 4)"


def test_requests_for_unknown_styles_or_nothing_say_so(studio, style):
    with pytest.raises(NotFound):
        studio.images.ingest("nope", [Path("x.png")])
    with pytest.raises(InvalidInput, match="Choose some images"):
        studio.images.ingest(style.id, [])
    report = studio.images.ingest(style.id, [Path("/no/such/file.png")])
    assert "not found" in reasons(report)["file.png"]


def test_stored_hash_matches_stored_bytes_for_every_path(studio, style, inputs):
    """The sha256 in the record is the sha256 of the file training will read."""
    files = [save(picture(95), inputs / "x.webp", lossless=True),
             save(picture(96).convert("L"), inputs / "grey.jpg")]
    for record in studio.images.ingest(style.id, files).added:
        assert sha256_bytes(stored(studio, record).read_bytes()) == record.sha256
