"""Check one image file and prepare what we keep of it.

Every file is opened with Pillow restricted to the formats we accept; its size is
checked from the header before any pixel is decoded (decompression bombs); the
picture is decoded completely (truncation and damage show up here) and turned into
the *stored copy*: upright, 8-bit RGB, no metadata, long side at most `max_side`.

Plain RGB JPEGs take a fast path: the stored copy is the original compressed data
with its metadata segments removed (lossless, no re-encoding), and the thumbnail,
hash and sharpness come from a reduced-scale decode (JPEG "draft" mode), which still
reads the whole compressed stream. Everything else is decoded, normalised and stored
as JPEG quality 95 (JPEG sources) or lossless PNG.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import (
    Image,
    ImageCms,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    UnidentifiedImageError,
)

from style_studio.base.errors import InvalidInput
from style_studio.credentials.c2pa_io import PILLOW_MIME
from style_studio.credentials.signals import read_training_signal

from .jpeg_segments import JpegStructureError, strip_metadata
from .meta import SourceMeta, read_source_meta
from .perceptual import phash, sharpness

log = logging.getLogger(__name__)

MB = 1 << 20
BASE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # JPEG also opens MPO
OPTIONAL_FORMATS = ("AVIF", "HEIF")  # only when Pillow (or pillow-heif) can read them
JPEG_FORMATS = ("JPEG", "MPO")
ORIENTATION_TAG = 0x0112
GPS_IFD = 0x8825
# Said in the image's details and the import report: the artist should know the place
# a photo was taken was in the file, and that the stored copy no longer has it.
GPS_REMOVED = "GPS location removed"
RAW_SUFFIXES = {".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2", ".pef", ".srw"}
BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error,
                 IndexError, TypeError)


@dataclass(frozen=True)
class IngestLimits:
    """Bounds on what one import may read, decode and write."""

    max_pixels: int = 64_000_000      # below Pillow's 89 MP default: 64 MP is 8000x8000
    max_side: int = 4096              # stored copies are capped here (see docs)
    max_file_bytes: int = 256 * MB
    thumb_side: int = 384
    analysis_side: int = 480
    jpeg_quality: int = 95
    png_compress_level: int = 4
    max_zip_entries: int = 5000
    max_zip_bytes: int = 4096 * MB
    max_zip_ratio: int = 100          # uncompressed/compressed above this = zip bomb
    max_folder_files: int = 5000
    max_caption_bytes: int = 16 * 1024


@dataclass
class PreparedImage:
    """What is kept of an accepted file: the stored copy, a thumbnail and measures."""

    data: bytes
    ext: str
    thumb: bytes
    width: int
    height: int
    source_width: int
    source_height: int
    format: str
    phash: str
    sharpness: float
    meta: SourceMeta = field(default_factory=SourceMeta)
    notes: list[str] = field(default_factory=list)


def configure_pillow() -> None:
    """Make Pillow's bomb warning an error and register an optional HEIF plugin.

    Process-wide on purpose: no part of the app should quietly decode a bomb.
    """
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    try:
        from pillow_heif import register_heif_opener  # optional, not required
    except ImportError:
        return
    register_heif_opener()


def accepted_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in BASE_FORMATS + OPTIONAL_FORMATS if f in Image.OPEN)


# -- reasons ------------------------------------------------------------------------
def _too_large(pixels: int, limits: IngestLimits, size: tuple[int, int] | None = None) -> str:
    dims = f"{size[0]}×{size[1]} pixels, " if size else ""
    return (f"too large: {dims}{pixels / 1e6:.0f} megapixels (the limit is "
            f"{limits.max_pixels / 1e6:.0f} MP, which guards against decompression bombs); "
            "save a smaller version and import that")


def _bomb_reason(exc: Exception, limits: IngestLimits) -> str:
    match = re.search(r"\((\d+) pixels\)", str(exc))
    return _too_large(int(match.group(1)) if match else limits.max_pixels + 1, limits)


def describe_non_image(path: Path) -> str:
    """Say what a file that Pillow does not accept actually is."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    suffix = path.suffix.lower()
    checks = [
        (suffix in RAW_SUFFIXES, "a camera RAW file; export it as JPEG, PNG or TIFF first"),
        (head.startswith(b"%PDF"), "a PDF document, not an image"),
        (head.startswith(b"8BPS"), "a Photoshop (PSD) file; export it as PNG or JPEG"),
        (head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftyphevc", b"ftypmsf1"),
         "a HEIC/HEIF photo, which needs the optional pillow-heif plugin; export it as "
         "JPEG, or install pillow-heif"),
        (text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")),
         f"an HTML web page, not an image (only its name ends in '{suffix}')"),
        (text.startswith((b"<svg", b"<?xml")), "an SVG/XML file; vector images are not "
         "accepted, export it as PNG"),
        (head.startswith(b"PK\x03\x04"), "a zip archive with an image name; rename it to .zip"),
    ]
    for matched, reason in checks:
        if matched:
            return reason
    if head and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        return f"a text file, not an image (only its name ends in '{suffix}')"
    return ("not a recognised image: the content is not JPEG, PNG, WebP, GIF, BMP or TIFF "
            "(it may be damaged or another kind of file)")


def _decode_reason(exc: Exception) -> str:
    message = str(exc) or type(exc).__name__
    # Pillow's own guard: a zTXt/iTXt text chunk unpacking past MAX_TEXT_CHUNK (1 MB), or
    # text chunks past MAX_TEXT_MEMORY. The picture may be fine; its metadata is the problem.
    if isinstance(exc, ValueError) and "MAX_TEXT" in message:
        return ("the file carries a metadata text chunk too large to read safely (over "
                f"{PngImagePlugin.MAX_TEXT_CHUNK // MB} MB of text once unpacked; a picture "
                "never needs that much). Export or save the picture again without its "
                "metadata and import that copy")
    if "truncated" in message.lower() or isinstance(exc, (EOFError, struct.error)):
        return ("the file is truncated (cut off part-way, e.g. an interrupted download or "
                "copy); copy or export it again")
    return f"the image data is damaged and cannot be decoded ({message})"


# -- opening and converting ----------------------------------------------------------------
def open_checked(path: Path, limits: IngestLimits) -> Image.Image:
    """Open (header only) with the accepted formats; refuse empty, huge and non-images."""
    size = path.stat().st_size
    if size == 0:
        raise InvalidInput("empty file (0 bytes)")
    if size > limits.max_file_bytes:
        raise InvalidInput(f"file too large ({size / MB:.0f} MB; the limit is "
                           f"{limits.max_file_bytes / MB:.0f} MB)")
    if path.suffix.lower() in RAW_SUFFIXES:
        raise InvalidInput(describe_non_image(path))
    try:
        im = Image.open(path, formats=accepted_formats())
    except BOMB_ERRORS as exc:
        raise InvalidInput(_bomb_reason(exc, limits)) from exc
    except UnidentifiedImageError as exc:
        raise InvalidInput(describe_non_image(path)) from exc
    except DECODE_ERRORS as exc:
        raise InvalidInput(_decode_reason(exc)) from exc
    pixels = im.width * im.height
    if pixels > limits.max_pixels:
        im.close()
        raise InvalidInput(_too_large(pixels, limits, im.size))
    if pixels == 0:
        im.close()
        raise InvalidInput("the image has no pixels (0 width or height)")
    return im


def _exif(im: Image.Image, notes: list[str]) -> Image.Exif | dict:
    try:
        return im.getexif()
    except Exception:  # a damaged EXIF block is metadata trouble, not a bad picture
        notes.append("its EXIF metadata was damaged and was ignored")
        return {}


def _has_gps(im: Image.Image, exif: Image.Exif | dict) -> bool:
    """Whether the upload says where it was taken (EXIF GPS, or GPS fields in XMP)."""
    try:
        if isinstance(exif, Image.Exif) and exif.get_ifd(GPS_IFD):
            return True
    except Exception:  # a damaged GPS block still means there was one
        return True
    xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp") or b""
    return b"GPSLatitude" in (xmp.encode("utf-8", "replace") if isinstance(xmp, str) else xmp)


def _to_srgb(im: Image.Image, notes: list[str]) -> Image.Image:
    """Apply an embedded colour profile so training sees the colours the artist saw."""
    icc = im.info.get("icc_profile")
    if not icc or im.mode not in ("RGB", "CMYK"):
        return im
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, source, ImageCms.createProfile("sRGB"),
                                         outputMode="RGB") or im
    except (ImageCms.PyCMSError, OSError, ValueError):
        notes.append("its colour profile could not be read and was ignored")
        return im


def _from_high_bit_depth(im: Image.Image) -> Image.Image:
    """16/32-bit grey to 8-bit by scaling (Pillow's convert would clip to white)."""
    pixels = np.asarray(im)
    if im.mode == "F":
        top = 1.0 if float(np.nanmax(pixels, initial=0)) <= 1.0 else 255.0
        scaled = np.clip(np.nan_to_num(pixels) / top * 255.0, 0, 255)
    else:
        top = max(65535, int(pixels.max(initial=0)))
        scaled = pixels.astype(np.float64) * 255.0 / top
    return Image.fromarray(np.rint(scaled).astype(np.uint8), "L")


def _has_transparency(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info


def to_rgb(im: Image.Image, notes: list[str]) -> Image.Image:
    """Any accepted mode to 8-bit RGB; transparency is flattened onto white."""
    if im.mode.startswith("I") or im.mode == "F":
        notes.append(f"{'32-bit float' if im.mode == 'F' else '16-bit'} image converted "
                     "to 8-bit RGB")
        return _from_high_bit_depth(im).convert("RGB")
    if _has_transparency(im):
        rgba = im.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            notes.append("transparent areas were filled with white")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if im.mode == "RGB":
        return _to_srgb(im, notes)
    if im.mode == "CMYK":
        notes.append("CMYK converted to RGB")
        converted = _to_srgb(im, notes)
        return converted if converted.mode == "RGB" else im.convert("RGB")
    if im.mode not in ("L", "P", "1"):
        notes.append(f"{im.mode} colour converted to RGB")
    return im.convert("RGB")


def _encode(im: Image.Image, jpeg_sampling: int | None,
            limits: IngestLimits) -> tuple[bytes, str]:
    """Encode without any metadata: a fresh `info` carries no EXIF, XMP or text.

    JPEG sources are re-encoded as JPEG with their own chroma subsampling (finer
    colour than the source cannot come back); everything else becomes lossless PNG.
    """
    im.info = {}
    buffer = io.BytesIO()
    if jpeg_sampling is not None:
        im.save(buffer, "JPEG", quality=limits.jpeg_quality,
                subsampling=jpeg_sampling if jpeg_sampling >= 0 else 0)
        return buffer.getvalue(), "jpg"
    im.save(buffer, "PNG", compress_level=limits.png_compress_level)
    return buffer.getvalue(), "png"


def _thumbnail(view: Image.Image, side: int) -> bytes:
    thumb = view.copy()
    thumb.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumb.save(buffer, "WEBP", quality=82, method=1)  # 2.5x faster than 4, ~25% larger
    return buffer.getvalue()


def _draft_box(size: tuple[int, int], side: int) -> tuple[int, int]:
    scale = side / max(size)
    return max(1, int(size[0] * scale)), max(1, int(size[1] * scale))


# -- the two paths --------------------------------------------------------------------
def _fast_jpeg(path: Path, limits: IngestLimits) -> tuple[bytes, Image.Image] | None:
    """Lossless copy without metadata + a reduced-scale decode; None if it does not apply."""
    try:
        stored = strip_metadata(path.read_bytes())
    except JpegStructureError:
        return None  # the full decode will say precisely what is wrong
    view = Image.open(io.BytesIO(stored), formats=["JPEG"])
    view.draft("RGB", _draft_box(view.size, limits.analysis_side))
    view.load()
    return stored, view.convert("RGB")


def _normalised(im: Image.Image, limits: IngestLimits, notes: list[str]) -> Image.Image:
    """Decode fully and normalise: first frame, upright, RGB, capped size."""
    frames = getattr(im, "n_frames", 1)
    if frames > 1:
        kind = "page" if im.format == "TIFF" else "frame"
        notes.append(f"it has {frames} {kind}s: only the first {kind} was kept")
        im.seek(0)
    if im.format in JPEG_FORMATS and max(im.size) > limits.max_side:
        im.draft(None, _draft_box(im.size, limits.max_side))
    im.load()
    orientation = _exif(im, []).get(ORIENTATION_TAG, 1)
    if orientation not in (None, 0, 1):
        im = ImageOps.exif_transpose(im)
        notes.append(f"turned upright (EXIF orientation {orientation})")
    rgb = to_rgb(im, notes)
    if max(rgb.size) > limits.max_side:
        before = rgb.size
        rgb.thumbnail((limits.max_side, limits.max_side), Image.Resampling.LANCZOS)
        notes.append(f"reduced from {before[0]}×{before[1]} to {rgb.width}×{rgb.height} "
                     f"(long side at most {limits.max_side} px)")
    return rgb


def prepare(path: Path, limits: IngestLimits) -> PreparedImage:
    """Check `path` and build its stored copy; raises InvalidInput with the reason."""
    notes: list[str] = []
    with open_checked(path, limits) as im:
        source_format, source_size = im.format or "?", im.size
        exif = _exif(im, notes)
        meta = read_source_meta(im, exif)
        if source_format in PILLOW_MIME:  # the formats that can carry Content Credentials
            meta.add_training_signal(read_training_signal(path, PILLOW_MIME[source_format]))
        if _has_gps(im, exif):
            notes.append(GPS_REMOVED)  # every stored copy is written without metadata
        upright = exif.get(ORIENTATION_TAG, 1) in (None, 0, 1)
        try:
            fast = (_fast_jpeg(path, limits) if source_format in JPEG_FORMATS
                    and im.mode == "RGB" and upright and max(im.size) <= limits.max_side
                    else None)
            if fast:
                data, view = fast
                ext, (width, height) = "jpg", source_size
            else:
                sampling = (JpegImagePlugin.get_sampling(im)
                            if source_format in JPEG_FORMATS else None)
                full = _normalised(im, limits, notes)
                data, ext = _encode(full, sampling, limits)
                width, height = full.size
                factor = max(1, max(full.size) // limits.analysis_side)
                view = full.reduce(factor) if factor > 1 else full
        except BOMB_ERRORS as exc:
            raise InvalidInput(_bomb_reason(exc, limits)) from exc
        except MemoryError as exc:
            raise InvalidInput("too large to decode in the memory available") from exc
        except DECODE_ERRORS as exc:
            raise InvalidInput(_decode_reason(exc)) from exc
    return PreparedImage(
        data=data, ext=ext, thumb=_thumbnail(view, limits.thumb_side), width=width,
        height=height, source_width=source_size[0], source_height=source_size[1],
        format=source_format, phash=phash(view), sharpness=sharpness(view), meta=meta,
        notes=notes)
