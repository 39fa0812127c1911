"""Captions: auto-captioning as a job, the artist's edits and approval, and the tools
around them (bulk edits with undo, statistics, token limit, wording review, sidecars).

Auto captions are drafts that record their origin (model and revision); only the
artist's approval makes a caption trainable. The record classes live in
`caption_records` and are re-exported here, the import path the rest of the app uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from style_studio.base.errors import InvalidInput, ModelUnavailable
from style_studio.base.jobs import Job, JobContext, JobRunner
from style_studio.base.limits import DemoLimits, LimitReached
from style_studio.base.store import Store
from style_studio.base.styles import Style, Styles
from style_studio.base.workspace import Workspace

from .captioners import (
    DEFAULT_CAPTIONER,
    KNOWN_CAPTIONERS,
    CaptionerCache,
    CaptionerSource,
    describe_captioner,
)
from .captioners import list_captioners as _list_captioners
from .edits import CaptionEdits
from .records import (
    TRIGGER_PLACEHOLDER,
    Caption,
    CaptionOrigin,
    CaptionRecords,
    CaptionStatus,
    OriginKind,
    insert_trigger,
)
from .sidecars import CaptionSidecars
from .tiny_captioners import TINY_CAPTIONER_LABELS
from .wording import (
    BaseTokenizers,
    TokenReport,
    WordingReview,
    WordStats,
    find_people_words,
    highlight,
    load_word_list,
    review,
    word_stats,
)

__all__ = ["TRIGGER_PLACEHOLDER", "AutoRequest", "Caption", "CaptionOrigin", "CaptionRecords",
           "CaptionRow", "CaptionStatus", "Captions", "OriginKind", "insert_trigger"]

DEFAULT_TEMPLATE = f"{TRIGGER_PLACEHOLDER}, {{caption}}"
JOB_KIND = "caption"


@dataclass
class CaptionRow:
    """One image of the style with its caption, as the editor and the grid show it."""

    image_id: str
    filename: str
    status: str  # "approved" | "draft" | "missing"
    text: str
    origin: str
    image_path: Path
    thumb_path: Path | None


@dataclass
class AutoRequest:
    """What an auto-caption batch should do (kept with the job as its params)."""

    style_id: str
    model: str = DEFAULT_CAPTIONER
    image_ids: list[str] | None = None
    overwrite: bool = False  # replace existing drafts
    replace_approved: bool = False  # also replace approved captions
    detailed: bool = False
    template: str = DEFAULT_TEMPLATE


def blocked(current: Caption | None, overwrite: bool, replace_approved: bool) -> str | None:
    """Why a batch must leave this caption alone, or None. Approved words are never
    replaced unless the artist asked for exactly that."""
    if current is None or not current.text:
        return None
    if current.status == "approved":
        return None if replace_approved else (
            "already approved (tick 'Also replace approved captions' to redo it)")
    if overwrite or replace_approved:
        return None
    return "already has a caption (tick 'Replace existing drafts' to redo it)"


class Captions:
    """The Captions service: `studio.captions`."""

    def __init__(self, store: Store, workspace: Workspace, styles: Styles, jobs: JobRunner,
                 records: CaptionRecords,
                 base_model_for: Callable[[Style], str | None] | None = None,
                 limits: DemoLimits | None = None):
        self.store = store
        self.limits = limits
        self.workspace = workspace
        self.styles = styles
        self.jobs = jobs
        self.records = records
        # The studio decides a style's base model (its own, the launch flag, or tiny).
        self.base_model_for = base_model_for or (lambda style: style.base_model)
        self.edits = CaptionEdits(store, records)
        self.sidecars = CaptionSidecars(store, workspace, records, self.edits)
        self.captioners = CaptionerCache(self.captioners_dir)
        self.tokenizers = BaseTokenizers(workspace.models_dir)

    @property
    def captioners_dir(self) -> Path:
        return self.workspace.models_dir / "captioners"

    # -- reading --------------------------------------------------------------------
    def get(self, image_id: str) -> Caption | None:
        return self.records.get(image_id)

    def rows(self, style_id: str) -> list[CaptionRow]:
        images = self.store.find("images", style_id=style_id)
        images.sort(key=lambda d: (d.get("added_at", ""), d.get("filename", "")))
        captions = self.records.for_style(style_id)
        folder = self.workspace.style_dir(style_id)
        rows = []
        for doc in images:
            caption = captions.get(doc["id"])
            status = "missing" if caption is None or not caption.text else caption.status
            thumb = doc.get("thumb_path")
            rows.append(CaptionRow(doc["id"], doc.get("filename", ""), status,
                                   caption.text if caption else "",
                                   caption.origin_label if caption else "",
                                   folder / doc["stored_path"], folder / thumb if thumb else None))
        return rows

    def approved(self, style_id: str) -> dict[str, Caption]:
        """The captions training may use: approved and not empty."""
        return {k: c for k, c in self.records.for_style(style_id).items() if c.approved}

    # -- the artist's edits ---------------------------------------------------------
    def set(self, image_id: str, text: str, approved: bool = False) -> Caption:
        """Save the artist's words; `[trigger]` becomes the style's trigger word."""
        image = self.store.require("images", image_id, "Image")
        text = insert_trigger(text, self.styles.get(image["style_id"]).trigger, prefix=False)
        current = self.records.get(image_id)
        origin = CaptionOrigin()
        if current is not None:
            origin = current.origin
            if current.text != text and origin.kind != "manual":
                origin = CaptionOrigin("manual", origin.model, origin.revision)
        return self.records.set(image_id, text, approved=approved, origin=origin)

    def approve(self, image_id: str, text: str | None = None) -> Caption:
        current = self.records.get(image_id)
        words = text if text is not None else (current.text if current else "")
        return self.set(image_id, words, approved=True)

    def unapprove(self, image_id: str) -> Caption:
        current = self.records.get(image_id)
        return self.set(image_id, current.text if current else "", approved=False)

    def forget_image(self, image_id: str) -> None:
        """Remove every caption trace of an image (erasure also drops the record)."""
        self.store.remove("captions", image_id)
        self.edits.forget_image(image_id)

    # -- auto-captioning ------------------------------------------------------------
    def list_captioners(self) -> list[CaptionerSource]:
        return _list_captioners(self.captioners_dir)

    def default_captioner(self) -> str:
        """BLIP base if downloaded, else the first real model that is, else BLIP base
        (whose error then says how to fetch it). Never the random tiny one."""
        real = [s for s in self.list_captioners() if s.kind != "tiny"]
        return next((s.ref for s in real if s.available), DEFAULT_CAPTIONER)

    def auto(self, style_id: str, model: str = DEFAULT_CAPTIONER,
             image_ids: list[str] | None = None, overwrite: bool = False,
             replace_approved: bool = False, detailed: bool = False,
             template: str = DEFAULT_TEMPLATE) -> Job:
        """Caption the style's images as a job (progress per image, cancel between).

        Results are drafts; approved captions are kept unless `replace_approved`.
        """
        style = self.styles.get(style_id)
        if self.limits is not None and model not in {*KNOWN_CAPTIONERS, *TINY_CAPTIONER_LABELS}:
            raise LimitReached("This demo captions with the listed models only; a model id "
                               "or folder typed in is turned off here.")
        source = describe_captioner(model, self.captioners_dir)
        if not source.available:
            error = ModelUnavailable if source.kind == "hub" else InvalidInput
            raise error(f"{source.label}: {source.detail}")
        template = (template or "{caption}").strip()
        if "{caption}" not in template:
            raise InvalidInput("The caption template must contain {caption}, where the "
                               "model's words go (for example '[trigger], {caption}').")
        known = {d["id"] for d in self.store.find("images", style_id=style_id)}
        unknown = [i for i in image_ids or [] if i not in known]
        if unknown:
            raise InvalidInput(f"{len(unknown)} of the chosen images are not in this style.")
        request = AutoRequest(style_id, source.ref, list(image_ids) if image_ids else None,
                              overwrite, replace_approved, detailed, template)
        count = len(image_ids) if image_ids else len(known)
        return self.jobs.submit(JOB_KIND, lambda ctx: self._run(ctx, request),
                                title=f"Auto-caption {count} image(s) in {style.name}",
                                style_id=style_id, params=asdict(request))

    def _targets(self, request: AutoRequest) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
        images = self.store.find("images", style_id=request.style_id)
        images.sort(key=lambda d: (d.get("added_at", ""), d.get("filename", "")))
        if request.image_ids is not None:
            images = [d for d in images if d["id"] in set(request.image_ids)]
        todo, skipped = [], []
        for doc in images:
            reason = blocked(self.records.get(doc["id"]), request.overwrite,
                             request.replace_approved)
            if reason:
                skipped.append({"image_id": doc["id"], "filename": doc.get("filename", ""),
                                "reason": reason})
            else:
                todo.append(doc)
        return todo, skipped

    def _run(self, ctx: JobContext, request: AutoRequest) -> dict[str, Any]:
        todo, skipped = self._targets(request)
        total = len(todo)
        if not todo:
            return {"captioned": 0, "skipped": skipped, "failures": [],
                    "message": "Nothing to caption: every chosen image already has one."}
        ctx.progress(0.0, f"Loading {request.model}…", done=0, total=total)
        captioner = self.captioners.get(request.model)
        trigger = self.styles.get(request.style_id).trigger
        origin = CaptionOrigin("auto", captioner.ref, captioner.revision)
        before: dict[str, dict[str, Any] | None] = {}
        after: dict[str, dict[str, Any] | None] = {}
        failures: list[dict[str, str]] = []
        try:
            for index, doc in enumerate(todo):
                ctx.check_cancelled()
                name = doc.get("filename") or doc["id"]
                try:
                    path = self.workspace.style_dir(request.style_id) / doc["stored_path"]
                    with Image.open(path) as image:
                        words = captioner.caption(image, request.detailed)
                    if not words:
                        raise ValueError("the model returned no words")
                    text = insert_trigger(request.template.replace("{caption}", words), trigger)
                    reason = self._store_draft(doc["id"], text, origin, request, before, after)
                    if reason:
                        skipped.append({"image_id": doc["id"], "filename": name,
                                        "reason": reason})
                except Exception as exc:  # one bad image is reported; the batch goes on
                    failures.append({"image_id": doc["id"], "filename": name,
                                             "reason": f"{type(exc).__name__}: {exc}"})
                    ctx.log(f"Could not caption {name}: {exc}")
                ctx.progress((index + 1) / total, f"Captioned {index + 1} of {total}: {name}",
                             done=index + 1, total=total, failures=failures)
        finally:
            if before:
                self.edits.record(request.style_id, f"Auto-caption with {request.model}",
                                  before, after)
        return {"captioned": len(after), "skipped": skipped, "failures": failures,
                "model": captioner.ref, "revision": captioner.revision}

    def _store_draft(self, image_id: str, text: str, origin: CaptionOrigin,
                     request: AutoRequest, before: dict[str, Any],
                     after: dict[str, Any]) -> str | None:
        """Write one draft, re-checking under the lock: the artist may have approved
        or written this caption while the batch ran. Returns why it was left alone."""
        with self.store.batch():
            current = self.records.get(image_id)
            reason = blocked(current, request.overwrite, request.replace_approved)
            if reason:
                return reason
            new = self.records.set(image_id, text, approved=False, origin=origin)
            before.setdefault(image_id, asdict(current) if current else None)
            after[image_id] = asdict(new)
            return None

    def unload(self) -> bool:
        """Free the captioning model (training calls this before it needs the device)."""
        return self.captioners.unload()

    # -- how the captions are worded ------------------------------------------------
    def _texts(self, style_id: str) -> dict[str, str]:
        return {k: c.text for k, c in self.records.for_style(style_id).items() if c.text}

    def stats(self, style_id: str) -> WordStats:
        return word_stats(self._texts(style_id), self.styles.get(style_id).trigger)

    def tokens(self, style_id: str, texts: dict[str, str] | None = None) -> TokenReport:
        """Token counts with the base model's own tokenizer; flags captions past its limit."""
        style = self.styles.get(style_id)
        texts = self._texts(style_id) if texts is None else texts
        return self.tokenizers.count(self.base_model_for(style), style.family, texts)

    def wording(self, style_id: str) -> WordingReview:
        return review(self._texts(style_id), load_word_list())

    def highlight(self, text: str) -> list[tuple[str, str | None]]:
        """The caption split into plain text and highlighted people-words."""
        return highlight(text, find_people_words(text, load_word_list()))
