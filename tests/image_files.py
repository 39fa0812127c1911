"""Image files for the Images tests, built in code: good pictures and a bad-input catalogue.

Nothing here is a fixture file on disk: each builder writes exactly the case it names.
"""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def picture(seed: int, size: tuple[int, int] = (640, 512)) -> Image.Image:
    """A sharp, varied 'artwork': a gradient, random shapes and a little grain."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    ramp = (np.cos(angle) * x / w + np.sin(angle) * y / h)
    colours = rng.integers(0, 255, (2, 3))
    base = colours[0] + ramp[..., None] * (colours[1] - colours[0])
    noise = rng.normal(0, 4, (h, w, 3))
    im = Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(10):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(w // 10, w // 2)), y0 + int(rng.integers(h // 10, h // 2))
        fill = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=fill)
    return im


def save(im: Image.Image, path: Path, fmt: str | None = None, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **params)
    return path


def huge_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid 1-bit PNG of width x height (a decompression bomb) made in ~0.1 s."""
    row = b"\x00" * (1 + (width + 7) // 8)
    packer = zlib.compressobj(1)
    body = b"".join(packer.compress(row * 200) for _ in range(height // 200)) + packer.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body)
                     + chunk(b"IEND", b""))
    return path


def jpeg_bytes(im: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=92, **params)
    return buffer.getvalue()


def with_iptc(jpeg: bytes, byline: bytes, copyright_: bytes) -> bytes:
    """Insert an APP13 Photoshop/IPTC block (what Lightroom and Photo Mechanic write)."""
    def dataset(number: int, value: bytes) -> bytes:
        return b"\x1c\x02" + bytes([number]) + len(value).to_bytes(2, "big") + value

    iptc = dataset(80, byline) + dataset(116, copyright_)
    iptc += b"\x00" * (len(iptc) % 2)
    resource = b"8BIM\x04\x04\x00\x00" + len(iptc).to_bytes(4, "big") + iptc
    payload = b"Photoshop 3.0\x00" + resource
    return jpeg[:2] + b"\xff\xed" + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def png_bytes(im: Image.Image) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, "PNG")
    return buffer.getvalue()


def cmyk_jpeg(path: Path) -> Path:
    return save(Image.new("CMYK", (600, 600), (0, 255, 255, 0)), path)  # red in CMYK


def deep_png(path: Path) -> Path:
    """16-bit grey ramp, 0 to 65535 left to right."""
    ramp = (np.linspace(0, 65535, 600)[None, :].repeat(600, 0)).astype(np.uint16)
    return save(Image.fromarray(ramp), path)


def palette_png(path: Path) -> Path:
    """Palette PNG: left half transparent (index 0), right half red."""
    palette = Image.new("P", (600, 600), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    ImageDraw.Draw(palette).rectangle([300, 0, 599, 599], fill=1)
    return save(palette, path, transparency=0)


def animated_gif(path: Path) -> Path:
    frames = [Image.new("RGB", (600, 600), c) for c in ("green", "red", "blue")]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def turned_jpeg(path: Path) -> Path:
    """Left half red, right half blue, EXIF orientation 6 (display turned 90° clockwise)."""
    im = Image.new("RGB", (640, 480), "blue")
    ImageDraw.Draw(im).rectangle([0, 0, 319, 479], fill="red")
    exif = Image.Exif()
    exif[0x0112] = 6
    path.write_bytes(jpeg_bytes(im, exif=exif))
    return path


def gps_image(path: Path, fmt: str = "JPEG") -> Path:
    exif = Image.Exif()
    exif[0x013B] = "Jane Painter"
    exif[0x8298] = "(c) 2024 Jane Painter"
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (51.0, 30.0, 12.5)
    return save(picture(10), path, fmt, exif=exif)


def escaping_zip(path: Path) -> Path:
    """Entries that try to leave the archive, one good image with its caption, Mac junk."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("../escaped.png", png_bytes(picture(13)))
        zf.writestr("/abs/rooted.png", png_bytes(picture(14)))
        zf.writestr("..\\windows.png", png_bytes(picture(15)))
        zf.writestr("herons/heron.png", png_bytes(picture(16)))
        zf.writestr("herons/heron.txt", "a heron standing in reeds")
        zf.writestr("__MACOSX/herons/._heron.png", b"junk")
    return path


def bomb_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("huge.png", b"\x00" * (40 << 20))        # 40 MB of zeros -> ~40 KB
        zf.writestr("fine.png", png_bytes(picture(17)))
    return path


def png_with_text_chunk(path: Path, kind: bytes = b"zTXt", text_bytes: int = 20 << 20) -> Path:
    """A small valid PNG whose compressed zTXt/iTXt chunk unpacks to `text_bytes` of text,
    placed before the pixel data (where Pillow reads it while opening)."""
    def chunk(name: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + name + data
                + struct.pack(">I", zlib.crc32(name + data)))

    packed = zlib.compress(b"A" * text_bytes, 9)
    # zTXt: keyword, NUL, method 0; iTXt: keyword, NUL, compressed flag 1, method 0,
    # empty language tag and translated keyword (two NULs)
    body = b"Comment\0\0" + packed if kind == b"zTXt" else b"Comment\0\1\0\0\0" + packed
    raw = png_bytes(picture(24, (64, 48)))
    at = raw.index(b"IDAT") - 4
    path.write_bytes(raw[:at] + chunk(kind, body) + raw[at:])
    return path


def link_zip(path: Path) -> Path:
    """One real picture and two symbolic links (Unix mode S_IFLNK), one named like an
    image and one like its caption, both pointing at a system file."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("real.png", png_bytes(picture(25, (96, 96))))
        for name in ("shortcut.png", "real.txt"):
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix: the high 16 bits of external_attr are st_mode
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def bad_files(folder: Path) -> list[Path]:
    """Empty, truncated JPEG, HTML named .png, a 20000x20000 PNG, a PDF."""
    good_jpeg = jpeg_bytes(picture(8))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes(good_jpeg[:len(good_jpeg) * 6 // 10])
    (folder / "page.png").write_text("<!DOCTYPE html>\n<html><body>Not found</body></html>")
    huge_png(folder / "bomb.png")
    (folder / "notes.pdf").write_bytes(b"%PDF-1.7\n...")
    return [folder / n for n in ("empty.jpg", "truncated.jpg", "page.png", "bomb.png",
                                 "notes.pdf")]


XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
 xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
 <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
  xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" photoshop:Credit="Studio North">
  <dc:creator><rdf:Seq><rdf:li>Mara Quill</rdf:li></rdf:Seq></dc:creator>
  <dc:rights><rdf:Alt><rdf:li xml:lang="x-default">All rights reserved</rdf:li></rdf:Alt>
  </dc:rights>
  <plus:DataMining rdf:resource="http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"/>
 </rdf:Description></rdf:RDF></x:xmpmeta>"""
