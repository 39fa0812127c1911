"""The IPTC XMP packet of an AI-made image, and putting it into a PNG without re-encoding.

IPTC Photo Metadata 2025.1 says what a trained model made, in words any photo tool
shows: Digital Source Type `trainedAlgorithmicMedia`, AI System Used, AI Prompt
Information, and (PLUS) whether the image may be mined for AI training. The Playground's
writer and the signer share this one packet, so a signed output and an unsigned one say
the same thing. The XMP is written before the C2PA manifest: the manifest's hash then
covers it, and changing it afterwards breaks the signature.
"""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from style_studio.base.errors import InvalidInput

SOFTWARE = "Style Studio"
XMP_KEY = "XML:com.adobe.xmp"
TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
IPTC_EXT_NS = "http://iptc.org/std/Iptc4xmpExt/2008-02-29/"
XMP_NS = "http://ns.adobe.com/xap/1.0/"
PLUS_NS = "http://ns.useplus.org/ldf/xmp/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
PREFIXES = {IPTC_EXT_NS: "Iptc4xmpExt", XMP_NS: "xmp", PLUS_NS: "plus", RDF_NS: "rdf"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PACKET_CHARS = 1 << 20


@dataclass(frozen=True)
class AiMediaXmp:
    """What the XMP of one output says. `data_mining` is a PLUS DMI URI, or None to omit."""

    system: str
    prompt: str
    created_at: str = ""
    creator_tool: str = SOFTWARE
    data_mining: str | None = None

    def packet(self) -> str:
        attrs = {
            "Iptc4xmpExt:DigitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
            "Iptc4xmpExt:AISystemUsed": self.system,
            "Iptc4xmpExt:AIPromptInformation": self.prompt,
            "xmp:CreatorTool": self.creator_tool,
            "xmp:CreateDate": self.created_at,
        }
        if self.data_mining:
            attrs["plus:DataMining"] = self.data_mining
        attr_text = "".join(f"\n    {name}={quoteattr(value)}" for name, value in attrs.items())
        return (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
            f' <rdf:RDF xmlns:rdf="{RDF_NS}">\n'
            '  <rdf:Description rdf:about=""\n'
            f'    xmlns:Iptc4xmpExt="{IPTC_EXT_NS}"\n'
            f'    xmlns:plus="{PLUS_NS}"\n'
            f'    xmlns:xmp="{XMP_NS}"'
            f"{attr_text}>\n"
            "   <dc:description xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><rdf:Alt>"
            f'<rdf:li xml:lang="x-default">{escape(self.prompt)}</rdf:li>'
            "</rdf:Alt></dc:description>\n"
            "  </rdf:Description>\n"
            " </rdf:RDF>\n"
            "</x:xmpmeta>\n"
            '<?xpacket end="r"?>'
        )


def xmp_attributes(packet: str | None) -> dict[str, str]:
    """The attributes of the packet's rdf:Description, as {"prefix:Name": value}."""
    if not packet or len(packet) > MAX_PACKET_CHARS or "<!DOCTYPE" in packet:
        return {}
    body = packet.split("?>", 1)[1] if packet.lstrip().startswith("<?xpacket") else packet
    body = body.rsplit("<?xpacket", 1)[0]
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return {}
    description = root.find(f".//{{{RDF_NS}}}Description")
    if description is None:
        return {}
    result = {}
    for name, value in description.attrib.items():
        namespace, _, local = name[1:].partition("}") if name.startswith("{") else ("", "", name)
        result[f"{PREFIXES.get(namespace, namespace)}:{local}" if namespace else local] = value
    return result


# -- PNG chunks ------------------------------------------------------------------------
def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of every chunk; raises InvalidInput on anything that is not a PNG."""
    if not data.startswith(PNG_SIGNATURE):
        raise InvalidInput("This file is not a PNG image, so its XMP cannot be written.")
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise InvalidInput("This PNG is cut short (a chunk runs past the end of the file).")
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos = end
        if kind == b"IEND":
            break
    return chunks


def build_png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    parts = [PNG_SIGNATURE]
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        parts.append(struct.pack(">I4s", len(body), kind) + body + struct.pack(">I", crc))
    return b"".join(parts)


def _is_xmp(kind: bytes, body: bytes) -> bool:
    return kind == b"iTXt" and body.split(b"\x00", 1)[0] == XMP_KEY.encode("latin-1")


def png_with_xmp(data: bytes, packet: str) -> bytes:
    """The same PNG with its XMP iTXt chunk replaced (or added after IHDR); pixels untouched."""
    chunks = [(k, b) for k, b in png_chunks(data) if not _is_xmp(k, b)]
    # keyword NUL, compression flag 0, method 0, empty language NUL, empty translation NUL
    itxt = XMP_KEY.encode("latin-1") + b"\x00\x00\x00\x00\x00" + packet.encode("utf-8")
    return build_png([*chunks[:1], (b"iTXt", itxt), *chunks[1:]])


def png_xmp(data: bytes) -> str | None:
    """The XMP packet of a PNG (iTXt, compressed or not), or None."""
    for kind, body in png_chunks(data):
        if not _is_xmp(kind, body):
            continue
        rest = body.split(b"\x00", 1)[1]
        compressed, rest = rest[:1] == b"\x01", rest[2:]
        parts = rest.split(b"\x00", 2)  # language tag, translated keyword, text
        if len(parts) != 3:
            return None
        text = (zlib.decompressobj().decompress(parts[2], MAX_PACKET_CHARS) if compressed
                else parts[2])  # capped: a file under verification may be hostile
        return text.decode("utf-8", errors="replace")
    return None
