"""The few calls into c2pa-python, with the settings every Style Studio use shares.

Offline always: no remote manifest fetch, no OCSP, no timestamp authority. Trust is
only what the caller hands in (the workspace root), never a list downloaded at run time.
Each call makes its own `Context`, so nothing leaks between a verification and a signing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, BinaryIO

import c2pa

from style_studio.base.errors import InvalidInput

from .identity import SigningIdentity

OCTET_STREAM = "application/octet-stream"
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
        ".webp": "image/webp", ".gif": "image/gif", ".tif": "image/tiff",
        ".tiff": "image/tiff", ".avif": "image/avif", ".heic": "image/heic",
        ".heif": "image/heif"}
PILLOW_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png",
               "WEBP": "image/webp", "GIF": "image/gif", "TIFF": "image/tiff",
               "AVIF": "image/avif", "HEIF": "image/heif"}


def settings(anchors_pem: str = "", verify_after_sign: bool = True) -> dict[str, Any]:
    """c2pa settings: network off, no thumbnails, trust limited to `anchors_pem` if given."""
    config: dict[str, Any] = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False,
                   "verify_after_sign": verify_after_sign},
        "builder": {"thumbnail": {"enabled": False}},
    }
    if anchors_pem:
        config["trust"] = {"trust_anchors": anchors_pem}
    return config


def signer(identity: SigningIdentity) -> c2pa.Signer:
    """A callback signer: the key stays in Python (cryptography), c2pa gets signatures only."""
    return c2pa.Signer.from_callback(identity.sign, c2pa.C2paSigningAlg.ES256,
                                     identity.chain_pem, None)


def sign_stream(manifest: dict[str, Any], identity: SigningIdentity, mime: str,
                source: BinaryIO, dest: BinaryIO, *, resources: dict[str, bytes] | None = None,
                detached: bool = False) -> bytes:
    """Sign `source` into `dest` (or, detached, return the manifest store only)."""
    try:
        with c2pa.Context.from_dict(settings(identity.root_pem, not detached)) as context, \
                c2pa.Builder(manifest, context=context) as builder, signer(identity) as sign:
            for name, data in (resources or {}).items():
                builder.add_resource(name, io.BytesIO(data))
            if detached:
                builder.set_no_embed()
            return builder.sign(sign, mime, source, dest)
    except c2pa.C2paError as exc:
        raise InvalidInput(f"The Content Credentials could not be signed: {exc}") from exc


def read_store(source: Path | BinaryIO, mime: str | None = None, *, anchors_pem: str = "",
               manifest_data: bytes | None = None) -> dict[str, Any] | None:
    """The manifest store as JSON (validation included), or None when the file has none."""
    with c2pa.Context.from_dict(settings(anchors_pem)) as context:
        if isinstance(source, Path):
            with open(source, "rb") as stream:
                return _read(stream, mime or MIME.get(source.suffix.lower()), context,
                             manifest_data)
        return _read(source, mime, context, manifest_data)


def _read(stream: BinaryIO, mime: str | None, context: c2pa.Context,
          manifest_data: bytes | None) -> dict[str, Any] | None:
    if manifest_data is None:
        reader = c2pa.Reader.try_create(mime, stream, None, context)
    else:
        reader = c2pa.Reader(mime or OCTET_STREAM, stream, manifest_data, context)
    if reader is None:
        return None
    with reader:
        return json.loads(reader.json())
