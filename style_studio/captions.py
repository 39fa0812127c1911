"""Caption records: one per image, draft until the artist approves it.

Training reads approved captions only. Auto-captioning backends are added by the
Captions issue; the record format below is shared with image import (sidecars).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from .errors import InvalidInput
from .store import Store, utc_now

CaptionStatus = Literal["draft", "approved"]
OriginKind = Literal["auto", "imported", "manual"]


@dataclass
class CaptionOrigin:
    kind: OriginKind = "manual"
    model: str | None = None
    revision: str | None = None


@dataclass
class Caption:
    """The caption of one image; `id` equals the image id."""

    id: str
    style_id: str
    text: str = ""
    status: CaptionStatus = "draft"
    origin: CaptionOrigin = field(default_factory=CaptionOrigin)
    updated_at: str = ""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Caption:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in doc.items() if k in known}
        data["origin"] = CaptionOrigin(**(doc.get("origin") or {}))
        return cls(**data)

    @property
    def approved(self) -> bool:
        return self.status == "approved" and bool(self.text.strip())


class CaptionRecords:
    """Read and write caption records in the store."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, image_id: str) -> Caption | None:
        doc = self.store.get("captions", image_id)
        return Caption.from_doc(doc) if doc else None

    def for_style(self, style_id: str) -> dict[str, Caption]:
        docs = self.store.find("captions", style_id=style_id)
        return {d["id"]: Caption.from_doc(d) for d in docs}

    def set(self, image_id: str, text: str, approved: bool = False,
            origin: CaptionOrigin | None = None) -> Caption:
        """Write a caption; an approval of an empty caption is refused."""
        image = self.store.require("images", image_id, "Image")
        text = " ".join((text or "").split())
        if approved and not text:
            raise InvalidInput("An empty caption cannot be approved; write what the image shows.")
        caption = Caption(id=image_id, style_id=image["style_id"], text=text,
                          status="approved" if approved else "draft",
                          origin=origin or CaptionOrigin(), updated_at=utc_now())
        with self.store.lock:
            self.store.remove("captions", image_id)
            self.store.insert("captions", asdict(caption))
        return caption
