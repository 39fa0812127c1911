"""Lossless JPEG metadata removal: drop metadata segments, keep the compressed pixels.

Re-encoding a JPEG costs time and a generation of quality. Most camera and export
JPEGs need nothing but their metadata removed (EXIF with GPS, XMP, IPTC, comments,
embedded previews), so we copy the byte stream segment by segment and leave out
those segments. The picture data itself is copied bit for bit.
"""

from __future__ import annotations

import numpy as np

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
    pos, markers = 2, None
    while True:
        if markers is not None:
            start = pos
            pos = _end_of_entropy_data(markers, pos)
            out.append(data[start:pos])
        if pos + 1 >= len(data) or data[pos] != 0xFF:
            raise JpegStructureError("the JPEG data ends before its end-of-image marker")
        pos += 1
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
        if marker == SOS_MARKER and markers is None:
            markers = _scan_markers(data, pos)


def _scan_markers(data: bytes, start: int) -> np.ndarray:
    """Offsets of every real marker from `start` on, found in one vectorised pass.

    Inside scan data 0xFF is followed by 0x00 (a stuffed byte), 0xD0-0xD7 (a restart
    marker) or another 0xFF (fill); anything else starts a real marker.
    """
    raw = np.frombuffer(data, dtype=np.uint8)
    at = np.flatnonzero(raw[start:-1] == 0xFF) + start
    follower = raw[at + 1]
    real = (follower != 0x00) & (follower != 0xFF) & ((follower < 0xD0) | (follower > 0xD7))
    return at[real]


def _end_of_entropy_data(markers: np.ndarray, pos: int) -> int:
    """Offset of the first real marker at or after `pos` (the end of the scan data)."""
    index = int(np.searchsorted(markers, pos))
    if index >= len(markers):
        raise JpegStructureError("the JPEG data ends before its end-of-image marker "
                                 "(the file is truncated)")
    return int(markers[index])
