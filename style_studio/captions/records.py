"""Caption records: one per image, draft until the artist approves it.

Training reads approved captions only (the consent gate checks `Caption.approved`).
The record format is shared with image import (sidecars); `style_studio.captions.service`
re-exports these names and adds the Captions service on top.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from style_studio.base.errors import InvalidInput
from style_studio.base.store import Store, known_fields, utc_now

CaptionStatus = Literal["draft", "approved"]
OriginKind = Literal["auto", "imported", "manual"]
TRIGGER_PLACEHOLDER = "[trigger]"
_PLACEHOLDER = re.compile(re.escape(TRIGGER_PLACEHOLDER), re.IGNORECASE)


def insert_trigger(text: str, trigger: str, prefix: bool = True) -> str:
    """Put the trigger word where `[trigger]` stands; else (if `prefix`) in front,
    unless the caption already contains it."""
    text = " ".join((text or "").split())
    if _PLACEHOLDER.search(text):
        text = _PLACEHOLDER.sub(lambda _m: trigger, text)
        return " ".join(text.split()).strip(" ,")
    if not prefix or not trigger:
        return text
    if re.search(r"(?<![\w-])" + re.escape(trigger) + r"(?![\w-])", text, re.IGNORECASE):
        return text
    return f"{trigger}, {text}" if text else trigger


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
        data = known_fields(cls, doc)
        data["origin"] = CaptionOrigin(**(doc.get("origin") or {}))
        return cls(**data)

    @property
    def approved(self) -> bool:
        return self.status == "approved" and bool(self.text.strip())

    @property
    def origin_label(self) -> str:
        """Where the words came from, e.g. "auto: Salesforce/blip… (edited)"."""
        origin = self.origin
        if origin.kind == "manual" and origin.model:
            return f"edited from {origin.model}"
        return f"{origin.kind}: {origin.model}" if origin.model else origin.kind


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
        with self.store.batch():
            self.store.remove("captions", image_id)
            self.store.insert("captions", asdict(caption))
        return caption

    def put(self, image_id: str, doc: dict[str, Any] | None) -> None:
        """Write a caption document back exactly as it was (None: no caption), for undo."""
        with self.store.batch():
            self.store.remove("captions", image_id)
            if doc is not None:
                self.store.insert("captions", {**doc, "id": image_id})
