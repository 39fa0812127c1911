"""Lossless JPEG metadata removal: drop metadata segments, keep the compressed pixels.

Re-encoding a JPEG costs time and a generation of quality. Most camera and export
JPEGs need nothing but their metadata removed (EXIF with GPS, XMP, IPTC, comments,
embedded previews), so we copy the byte stream segment by segment and leave out
those segments. The picture data itself is copied bit for bit.
"""

from __future__ import annotations

SOI = b"\xff\xd8"
EOI_MARKER = 0xD9
SOS_MARKER = 0xDA
STANDALONE = {0x01, *range(0xD0, 0xD8)}
# APPn segments worth keeping, by the identifier their payload starts with:
# JFIF (pixel density), ICC profile (colours), Adobe (how to read the colour channels).
KEEP_APP = {0xE0: (b"JFIF\x00",), 0xE2: (b"ICC_PROFILE\x00",), 0xEE: (b"Adobe",)}
COMMENT_MARKER = 0xFE


class JpegStructureError(ValueError):
    """The stream is not a well-formed JPEG (damaged or truncated)."""


def _is_metadata(marker: int, payload: bytes) -> bool:
    """True for segments that carry metadata rather than what decoding needs."""
    if marker == COMMENT_MARKER:
        return True
    if 0xE0 <= marker <= 0xEF:
        return not payload.startswith(KEEP_APP.get(marker, ()))
    return False


def _segment_length(data: bytes, pos: int) -> int:
    if pos + 2 > len(data):
        raise JpegStructureError("the file ends inside a JPEG header")
    length = int.from_bytes(data[pos:pos + 2], "big")
    if length < 2 or pos + length > len(data):
        raise JpegStructureError("the file ends inside a JPEG header (truncated)")
    return length


def strip_metadata(data: bytes) -> bytes:
    """Return `data` without metadata segments and without anything after the image.

    Raises JpegStructureError when the stream is damaged or ends early.
    """
    if not data.startswith(SOI):
        raise JpegStructureError("not a JPEG stream")
    out = [SOI]
    pos, in_scan = 2, False
    while True:
        if in_scan:
            start = pos
            pos = _end_of_entropy_data(data, pos)
            out.append(data[start:pos])
        marker_at = data.find(b"\xff", pos) if in_scan else pos
        if marker_at < 0 or marker_at + 1 >= len(data) or data[marker_at] != 0xFF:
            raise JpegStructureError("the JPEG data ends before its end-of-image marker")
        pos = marker_at + 1
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= len(data):
            raise JpegStructureError("the JPEG data ends before its end-of-image marker")
        marker = data[pos]
        pos += 1
        if marker == EOI_MARKER:
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in STANDALONE:
            out.append(bytes((0xFF, marker)))
            continue
        length = _segment_length(data, pos)
        payload = data[pos + 2:pos + length]
        if not _is_metadata(marker, payload):
            out.append(bytes((0xFF, marker)) + data[pos:pos + length])
        pos += length
        in_scan = in_scan or marker == SOS_MARKER


def _end_of_entropy_data(data: bytes, pos: int) -> int:
    """Index of the first real marker after compressed scan data (0xFF00 and RSTn are data)."""
    while True:
        found = data.find(b"\xff", pos)
        if found < 0 or found + 1 >= len(data):
            raise JpegStructureError("the JPEG data ends before its end-of-image marker "
                                     "(the file is truncated)")
        follower = data[found + 1]
        if follower == 0x00 or 0xD0 <= follower <= 0xD7 or follower == 0xFF:
            pos = found + 1
            continue
        return found
