"""Who made an image and what they allow, as written inside the file itself.

Read from EXIF (Artist, Copyright), XMP (dc:creator, dc:rights, photoshop:Credit,
plus:DataMining), IPTC IIM (By-line, Credit, Copyright Notice) and Content Credentials
(a C2PA `cawg.training-mining` / `c2pa.training-mining` assertion, read in
credentials/signals.py and kept here as words). The stored copy has
all metadata stripped (GPS!), so these few values are kept in the image record for the
Consent tab, never the rest.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, IptcImagePlugin

from style_studio.credentials.signals import TrainingSignal

log = logging.getLogger(__name__)

EXIF_ARTIST = 0x013B
EXIF_COPYRIGHT = 0x8298
TIFF_XMP_TAG = 700
IPTC_BYLINE, IPTC_CREDIT, IPTC_COPYRIGHT = (2, 80), (2, 110), (2, 116)
MAX_XMP_BYTES = 1 << 20
MAX_VALUE_CHARS = 500

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
}
C2PA_FIELDS = ("training_mining", "training_mining_refusal")
XMP_FIELDS = {
    "creator": ("dc", "creator"),
    "copyright": ("dc", "rights"),
    "credit": ("photoshop", "Credit"),
    "data_mining": ("plus", "DataMining"),
}


@dataclass
class SourceMeta:
    """Creator and rights statements found in the uploaded file (None when absent)."""

    creator: str | None = None
    copyright: str | None = None
    credit: str | None = None
    data_mining: str | None = None
    training_mining: str | None = None  # the C2PA/CAWG entries, as found
    training_mining_refusal: str | None = None  # why they forbid training, in words

    def to_doc(self) -> dict[str, str | None]:
        """The record's `source_meta`; the C2PA fields only when the file had a signal."""
        doc = asdict(self)
        for key in C2PA_FIELDS:
            if doc[key] is None:
                del doc[key]
        return doc

    @property
    def prohibits_mining(self) -> bool:
        """PLUS vocabulary: DMI-PROHIBITED* forbids AI/ML training of the image."""
        return "PROHIBITED" in (self.data_mining or "").upper()

    def add_training_signal(self, signal: TrainingSignal | None) -> None:
        """Keep what the file's Content Credentials say about AI training (if anything)."""
        if signal is None:
            return
        self.training_mining = signal.summary()
        self.training_mining_refusal = signal.reason() if signal.refused else None

    @property
    def constrains_mining(self) -> bool:
        return "CONSTRAINED" in (self.data_mining or "").upper()


def _text(value: Any) -> str | None:
    """Decode a metadata value (bytes, str or a list of them) into one clean line."""
    if isinstance(value, (list, tuple)):
        parts = [t for t in (_text(v) for v in value) if t]
        return "; ".join(parts) or None
    if isinstance(value, bytes):
        value = value.rstrip(b"\x00")
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    if value is None:
        return None
    text = " ".join(str(value).replace("\x00", " ").split())
    return text[:MAX_VALUE_CHARS] or None


def _xmp_bytes(im: Image.Image) -> bytes | None:
    for key in ("xmp", "XML:com.adobe.xmp"):
        value = im.info.get(key)
        if value:
            return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    tags = getattr(im, "tag_v2", None)
    value = tags.get(TIFF_XMP_TAG) if tags is not None else None
    if isinstance(value, (bytes, str)) and value:
        return value.encode("utf-8") if isinstance(value, str) else value
    return None


def _xmp_values(node: ET.Element) -> str | None:
    """A property is plain text, an rdf:Seq/Bag/Alt of rdf:li, or an rdf:resource URI."""
    items = [li.text for li in node.iter(f"{{{NS['rdf']}}}li")]
    if items:
        return _text(items)
    return _text(node.text) or _text(node.get(f"{{{NS['rdf']}}}resource"))


def read_xmp(data: bytes | None) -> dict[str, str | None]:
    """Parse XMP packets defensively: size-capped, no DTDs (entity expansion)."""
    if not data or len(data) > MAX_XMP_BYTES or b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return {}
    start = data.find(b"<x:xmpmeta")
    end = data.rfind(b"</x:xmpmeta>")
    packet = data[start:end + len(b"</x:xmpmeta>")] if start >= 0 and end > start else data
    try:
        root = ET.fromstring(packet)
    except ET.ParseError:
        return {}
    found: dict[str, str | None] = {}
    for key, (prefix, local) in XMP_FIELDS.items():
        name = f"{{{NS[prefix]}}}{local}"
        for desc in root.iter(f"{{{NS['rdf']}}}Description"):
            value = _text(desc.get(name))
            node = desc.find(name)
            value = value or (_xmp_values(node) if node is not None else None)
            if value:
                found[key] = value
                break
    return found


def read_iptc(im: Image.Image) -> dict[str, str | None]:
    try:
        info = IptcImagePlugin.getiptcinfo(im) or {}
    except Exception:  # damaged IPTC blocks must not reject an otherwise good image
        log.debug("unreadable IPTC block", exc_info=True)
        return {}
    return {"creator": _text(info.get(IPTC_BYLINE)),
            "credit": _text(info.get(IPTC_CREDIT)),
            "copyright": _text(info.get(IPTC_COPYRIGHT))}


def read_source_meta(im: Image.Image, exif: Image.Exif | dict) -> SourceMeta:
    """First value found wins, in the order EXIF, XMP, IPTC."""
    sources = [
        {"creator": _text(exif.get(EXIF_ARTIST)), "copyright": _text(exif.get(EXIF_COPYRIGHT))},
        read_xmp(_xmp_bytes(im)),
        read_iptc(im),
    ]
    meta = SourceMeta()
    for field_name in ("creator", "copyright", "credit", "data_mining"):
        for source in sources:
            if source.get(field_name):
                setattr(meta, field_name, source[field_name])
                break
    return meta
