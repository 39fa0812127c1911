"""Perceptual measures of a picture: a DCT hash for near-duplicates and a sharpness score.

Both are computed on a small copy (long side about 480 px), so they cost a few
milliseconds and do not depend on the file's resolution or encoding: a resized or
re-compressed copy of an image gets (nearly) the same hash.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_SIZE = 8          # 8x8 low frequencies -> a 64-bit hash
HASH_SOURCE = 32       # the DCT is taken of a 32x32 grey copy
FLAT_STD = 1.0         # grey levels: below this a picture is one flat colour
FLAT_HASH = "0" * 16   # the hash of a flat picture; never matched as a near-duplicate
SHARPNESS_SIDE = 480   # sharpness is measured at this long side
SHARPNESS_TILES = 4    # ...on a 4x4 grid; the sharpest tile counts (depth of field is fine)


def _dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II basis (n x n)."""
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    matrix = np.cos(np.pi * (2 * x + 1) * k / (2 * n)) * np.sqrt(2 / n)
    matrix[0] /= np.sqrt(2)
    return matrix


DCT_BASIS = _dct_matrix(HASH_SOURCE)  # a constant: computed once at import


def phash(im: Image.Image) -> str:
    """64-bit pHash as 16 hex digits: low DCT frequencies above their median."""
    grey = im.convert("L").resize((HASH_SOURCE, HASH_SOURCE), Image.Resampling.LANCZOS)
    pixels = np.asarray(grey, dtype=np.float64)
    if pixels.std() < FLAT_STD:
        return FLAT_HASH  # no structure to hash: its bits would be rounding noise
    low = (DCT_BASIS @ pixels @ DCT_BASIS.T)[:HASH_SIZE, :HASH_SIZE]
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    """Number of differing bits between two hex hashes."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def sharpness(im: Image.Image) -> float:
    """Variance of the Laplacian in the sharpest tile of a grey copy at SHARPNESS_SIDE.

    A photo with a sharp subject and a blurred background scores high (its subject
    tile is sharp); a picture that is soft everywhere scores low.
    """
    grey = im.convert("L")
    scale = SHARPNESS_SIDE / max(grey.size)
    if scale < 1:
        size = (max(1, round(grey.width * scale)), max(1, round(grey.height * scale)))
        grey = grey.resize(size, Image.Resampling.BOX)
    pixels = np.asarray(grey, dtype=np.float32)
    if min(pixels.shape) < 3:
        return 0.0
    lap = (pixels[:-2, 1:-1] + pixels[2:, 1:-1] + pixels[1:-1, :-2] + pixels[1:-1, 2:]
           - 4 * pixels[1:-1, 1:-1])
    rows = np.array_split(np.arange(lap.shape[0]), SHARPNESS_TILES)
    cols = np.array_split(np.arange(lap.shape[1]), SHARPNESS_TILES)
    scores = [float(lap[r[0]:r[-1] + 1, c[0]:c[-1] + 1].var())
              for r in rows if len(r) for c in cols if len(c)]
    return round(max(scores), 2) if scores else 0.0
