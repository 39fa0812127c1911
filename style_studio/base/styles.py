"""Styles (projects): one trained look, its images, captions, consents and runs."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput
from .family import FAMILY_LABELS, TOY_ID, check_family
from .limits import DemoLimits, LimitReached
from .store import Store, known_fields, utc_now
from .workspace import Workspace

TRIGGER_PATTERN = re.compile(r"^[\w-]{2,40}$")
CURRENT_KEY = "current_style"
# Tables whose records belong to one style and go with it when it is deleted.
STYLE_TABLES = ("images", "captions", "consents", "runs", "caption_undo")


@dataclass
class Style:
    id: str
    name: str
    trigger: str = ""
    family: str = "sd15"
    notes: str = ""
    base_model: str | None = None
    # The artist's training-and-mining choice for what the style makes (CAWG values, as
    # credentials.sign.TrainingMining.to_doc writes it); None = the default, no AI training.
    training_mining: dict[str, str] | None = None
    created_at: str = ""
    updated_at: str = ""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Style:
        return cls(**known_fields(cls, doc))

    @property
    def family_label(self) -> str:
        return FAMILY_LABELS.get(self.family, self.family)


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("A style needs a name, for example 'Ink washes'.")
    if len(name) > 80:
        raise InvalidInput("A style name can be at most 80 characters.")
    return name


def _clean_trigger(trigger: str) -> str:
    trigger = (trigger or "").strip()
    if trigger and not TRIGGER_PATTERN.match(trigger):
        raise InvalidInput(
            f"The trigger word '{trigger}' must be one word of 2-40 letters, digits, "
            "'_' or '-', with no spaces or commas (for example 'inkwash')."
        )
    return trigger


def _clean_family(family: str) -> str:
    check_family(family)
    return family


class Styles:
    """Create, edit, switch and delete styles."""

    def __init__(self, store: Store, workspace: Workspace, limits: DemoLimits | None = None):
        self.store = store
        self.workspace = workspace
        self.limits = limits

    def _demo_check(self, base_model: str | None, creating: bool) -> None:
        """On a public demo: a bounded number of styles and no base model by path or id
        (a stranger must not make the server read its disk or download gigabytes)."""
        if self.limits is None:
            return
        if base_model and base_model != TOY_ID:
            raise LimitReached("This demo trains the built-in toy model only; choosing "
                               "another base model is turned off here.")
        count = len(self.store.all("styles"))
        if creating and count >= self.limits.max_styles:
            raise LimitReached(f"This demo keeps at most {self.limits.max_styles} styles per "
                               "visitor; delete one to make another.")

    def create(self, name: str, trigger: str = "", family: str = "sd15", notes: str = "",
               base_model: str | None = None) -> Style:
        with self.store.lock:
            self._demo_check(base_model, creating=True)
            name = self._unique_name(_clean_name(name))
            now = utc_now()
            doc = self.store.insert("styles", {
                "name": name, "trigger": _clean_trigger(trigger),
                "family": _clean_family(family), "notes": notes or "",
                "base_model": base_model, "created_at": now, "updated_at": now,
            })
            self.store.audit("style.create", doc["id"], name=name)
            self.store.meta_set(CURRENT_KEY, doc["id"])
        self.workspace.style_dir(doc["id"]).mkdir(parents=True, exist_ok=True)
        return Style.from_doc(doc)

    def _unique_name(self, name: str, except_id: str | None = None) -> str:
        taken = {s.name.lower() for s in self.list() if s.id != except_id}
        if name.lower() in taken:
            raise InvalidInput(f"A style called '{name}' already exists; choose another name.")
        return name

    def get(self, style_id: str) -> Style:
        return Style.from_doc(self.store.require("styles", style_id, "Style"))

    def list(self) -> list[Style]:
        styles = [Style.from_doc(d) for d in self.store.all("styles")]
        return sorted(styles, key=lambda s: s.name.lower())

    def update(self, style_id: str, **changes: Any) -> Style:
        """Change name, trigger, family, notes, base_model or training_mining (checked by
        the credentials service before it comes here); other keys are refused."""
        cleaners = {"name": _clean_name, "trigger": _clean_trigger, "family": _clean_family,
                    "notes": lambda v: v or "", "base_model": lambda v: v or None,
                    "training_mining": lambda v: dict(v) if v else None}
        unknown = set(changes) - set(cleaners)
        if unknown:
            raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))} of a style.")
        with self.store.lock:
            before = self.get(style_id)
            clean = {k: cleaners[k](v) for k, v in changes.items()}
            if clean.get("base_model") and clean["base_model"] != before.base_model:
                self._demo_check(clean["base_model"], creating=False)
            if "name" in clean:
                clean["name"] = self._unique_name(clean["name"], except_id=style_id)
            doc = self.store.update("styles", style_id, **clean, updated_at=utc_now())
            changed = {k: [getattr(before, k), v] for k, v in clean.items()
                       if getattr(before, k) != v}
            if changed:
                self.store.audit("style.update", style_id, changes=changed)
        return Style.from_doc(doc)

    def rename(self, style_id: str, name: str) -> Style:
        return self.update(style_id, name=name)

    def delete(self, style_id: str) -> Style:
        """Delete a style, its records and its whole folder. The UI asks first."""
        style = self.get(style_id)
        with self.store.batch():
            for table in STYLE_TABLES:
                self.store.remove_where(table, style_id=style_id)
            self.store.remove("styles", style_id)
            if self.store.meta_get(CURRENT_KEY) == style_id:
                self.store.meta_set(CURRENT_KEY, None)
            self.store.audit("style.delete", style_id, name=style.name)
        shutil.rmtree(self.workspace.style_dir(style_id), ignore_errors=True)
        return style

    def select(self, style_id: str) -> Style:
        """Remember `style_id` as the default for the next brand-new page."""
        style = self.get(style_id)
        if self.store.meta_get(CURRENT_KEY) != style_id:  # a page load rewrites nothing
            self.store.meta_set(CURRENT_KEY, style_id)
        return style

    def current(self) -> Style | None:
        """The style last chosen in any page: only the default for a brand-new page.
        Each page keeps its own choice (`for_page`), so two tabs never switch each other."""
        style_id = self.store.meta_get(CURRENT_KEY)
        if style_id and self.store.get("styles", style_id):
            return self.get(style_id)
        styles = self.list()
        return styles[0] if styles else None

    def for_page(self, style_id: str | None) -> Style | None:
        """The style a page opens on: its own choice (kept in its address) while that
        style exists, else the last one chosen anywhere."""
        if style_id and self.store.get("styles", style_id):
            return self.get(style_id)
        return self.current()
