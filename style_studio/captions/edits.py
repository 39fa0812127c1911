"""Bulk caption edits (find/replace, prefix/suffix, remove a word) and their undo.

Every bulk change (these edits, an auto-caption batch, a sidecar import) stores what it
changed in the `caption_undo` table, one document per image (id = image id), so the
last one can be undone exactly, even after a restart. One document per image means an
erasure removes the old text together with the image.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from style_studio.base.errors import InvalidInput
from style_studio.base.store import Store, utc_now

from .records import CaptionOrigin, CaptionRecords

UNDO_TABLE = "caption_undo"
Transform = Callable[[str], str]


def word_pattern(word: str, case_sensitive: bool = False) -> re.Pattern[str]:
    """`word` as a whole word: not part of a longer word or a hyphenated compound."""
    flags = 0 if case_sensitive else re.IGNORECASE
    return re.compile(r"(?<![\w-])" + re.escape(word) + r"(?![\w-])", flags)


def tidy(text: str) -> str:
    """Clean up what removing words leaves behind: double commas, stray spaces."""
    text = " ".join(text.split())
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    text = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", text)
    return text.strip(" ,;:")


def replace_text(text: str, find: str, replacement: str, case_sensitive: bool = False,
                 whole_word: bool = False) -> str:
    if whole_word:
        pattern = word_pattern(find, case_sensitive)
    else:
        pattern = re.compile(re.escape(find), 0 if case_sensitive else re.IGNORECASE)
    new = pattern.sub(lambda _m: replacement, text)
    return tidy(new) if new != text else text


def add_prefix(text: str, prefix: str) -> str:
    """Put `prefix` in front unless the caption already starts with it."""
    if text.lower().startswith(prefix.strip().lower()):
        return text
    return " ".join(f"{prefix.strip()} {text}".split())


def add_suffix(text: str, suffix: str) -> str:
    """Append `suffix` unless the caption already ends with it; ", x" joins tightly."""
    suffix = suffix.strip()
    if text.lower().endswith(suffix.lower()):
        return text
    joiner = "" if suffix[:1] in ",.;:" else " "
    return " ".join(f"{text}{joiner}{suffix}".split())


def remove_word(text: str, word: str) -> str:
    new = word_pattern(word).sub("", text)
    return tidy(new) if new != text else text


@dataclass
class BulkEditReport:
    label: str
    changed: int
    unchanged: int
    emptied: int = 0

    @property
    def message(self) -> str:
        if not self.changed:
            return f"{self.label}: no caption needed a change."
        text = f"{self.label}: changed {self.changed} caption(s)"
        if self.emptied:
            text += (f"; {self.emptied} approved caption(s) became empty and went back "
                     "to draft")
        return text + ". Undo is available."


@dataclass
class UndoReport:
    label: str
    restored: int
    kept: list[str] = field(default_factory=list)
    gone: int = 0

    @property
    def message(self) -> str:
        text = f"Undid '{self.label}': restored {self.restored} caption(s)."
        if self.kept:
            text += (f" {len(self.kept)} caption(s) you edited after it were left as you "
                     "edited them.")
        if self.gone:
            text += f" {self.gone} image(s) deleted since were not brought back."
        return text


@dataclass
class LastEdit:
    """The bulk change that `undo` would revert."""

    label: str
    at: str
    count: int


def _state(doc: dict[str, Any] | None) -> tuple[str, str] | None:
    return (doc.get("text", ""), doc.get("status", "draft")) if doc else None


class CaptionEdits:
    """Bulk edits over a style's captions, each undoable until the next one."""

    def __init__(self, store: Store, records: CaptionRecords):
        self.store = store
        self.records = records

    # -- the edits ------------------------------------------------------------------
    def replace(self, style_id: str, find: str, replacement: str, *,
                case_sensitive: bool = False, whole_word: bool = False,
                image_ids: Iterable[str] | None = None) -> BulkEditReport:
        if not find:
            raise InvalidInput("Type the text to find.")
        label = f"Replace '{find}' with '{replacement}'"
        return self.apply(style_id, label, lambda t: replace_text(
            t, find, replacement, case_sensitive, whole_word), image_ids)

    def add_prefix(self, style_id: str, prefix: str,
                   image_ids: Iterable[str] | None = None) -> BulkEditReport:
        if not prefix.strip():
            raise InvalidInput("Type the text to put in front of every caption.")
        return self.apply(style_id, f"Add prefix '{prefix.strip()}'",
                          lambda t: add_prefix(t, prefix), image_ids)

    def add_suffix(self, style_id: str, suffix: str,
                   image_ids: Iterable[str] | None = None) -> BulkEditReport:
        if not suffix.strip():
            raise InvalidInput("Type the text to add at the end of every caption.")
        return self.apply(style_id, f"Add suffix '{suffix.strip()}'",
                          lambda t: add_suffix(t, suffix), image_ids)

    def remove_word(self, style_id: str, word: str,
                    image_ids: Iterable[str] | None = None) -> BulkEditReport:
        word = " ".join(word.split())
        if not word:
            raise InvalidInput("Type the word to remove.")
        return self.apply(style_id, f"Remove '{word}'", lambda t: remove_word(t, word),
                          image_ids)

    def apply(self, style_id: str, label: str, transform: Transform,
              image_ids: Iterable[str] | None = None) -> BulkEditReport:
        """Run `transform` over the captions (all, or `image_ids`) in one store write.

        Status is kept (the artist chose this edit), except that a caption emptied by
        it cannot stay approved.
        """
        with self.store.batch():
            captions = self.records.for_style(style_id)
            wanted = set(image_ids) if image_ids is not None else set(captions)
            before: dict[str, dict[str, Any] | None] = {}
            after: dict[str, dict[str, Any] | None] = {}
            report = BulkEditReport(label, 0, 0)
            for image_id in sorted(wanted & set(captions)):
                caption = captions[image_id]
                new_text = transform(caption.text)
                if new_text == caption.text:
                    report.unchanged += 1
                    continue
                keep = caption.status == "approved" and bool(new_text.strip())
                report.emptied += caption.status == "approved" and not keep
                origin = CaptionOrigin("manual", caption.origin.model, caption.origin.revision)
                updated = self.records.set(image_id, new_text, approved=keep, origin=origin)
                before[image_id], after[image_id] = asdict(caption), asdict(updated)
                report.changed += 1
            if before:
                self.record(style_id, label, before, after)
        return report

    # -- undo -----------------------------------------------------------------------
    def record(self, style_id: str, label: str, before: dict[str, dict[str, Any] | None],
               after: dict[str, dict[str, Any] | None]) -> None:
        """Remember a bulk change (caption docs before/after, None = no caption)."""
        at = utc_now()
        with self.store.batch():
            self.store.remove_where(UNDO_TABLE, style_id=style_id)
            for image_id in before:
                self.store.insert(UNDO_TABLE, {
                    "id": image_id, "style_id": style_id, "label": label, "at": at,
                    "before": before[image_id], "after": after.get(image_id)})

    def last(self, style_id: str) -> LastEdit | None:
        docs = self.store.find(UNDO_TABLE, style_id=style_id)
        if not docs:
            return None
        return LastEdit(docs[0]["label"], docs[0]["at"], len(docs))

    def undo(self, style_id: str) -> UndoReport:
        """Restore text, status and origin of every caption the last bulk change touched.

        A caption edited again since is left alone (its newer words are the artist's),
        and a caption of an image deleted since is never brought back.
        """
        with self.store.batch():
            docs = self.store.find(UNDO_TABLE, style_id=style_id)
            if not docs:
                raise InvalidInput("There is no bulk edit to undo.")
            report = UndoReport(docs[0]["label"], 0)
            for doc in docs:
                image_id = doc["id"]
                if self.store.get("images", image_id) is None:
                    report.gone += 1
                    continue
                if _state(self.store.get("captions", image_id)) != _state(doc["after"]):
                    report.kept.append(image_id)
                    continue
                self.records.put(image_id, doc["before"])
                report.restored += 1
            self.store.remove_where(UNDO_TABLE, style_id=style_id)
        return report

    def forget_image(self, image_id: str) -> None:
        """Drop an image's old caption text from the undo record (used on erasure)."""
        self.store.remove(UNDO_TABLE, image_id)

