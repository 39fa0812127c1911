"""The consent ledger: an overview, and the export (CSV, JSON) an artist hands a client.

The export lists every image with its hash, creator, licence, permission and whether the
gate lets it be trained on; it can be edited in a spreadsheet and imported back.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from style_studio.base.errors import InvalidInput
from style_studio.base.files import atomic_write_text
from style_studio.base.licences import STATUSES, licence_label
from style_studio.base.store import utc_now

from .gate import TrainingPlan

if TYPE_CHECKING:
    from .records import ImageConsent

FORMAT = "style-studio consent ledger"
COLUMNS = ("image_id", "filename", "sha256", "status", "reason", "creator", "relationship",
           "source", "licence", "licence_name", "licence_text", "evidence_text",
           "evidence_file", "date", "notes", "recorded", "updated_at", "training")
# A spreadsheet runs a cell starting with these as a formula; a leading ' keeps it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NO_RECORD = "no record"


@dataclass
class Overview:
    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_licence: dict[str, int] = field(default_factory=dict)
    creators: dict[str, int] = field(default_factory=dict)
    trainable: int = 0
    obligations: list[str] = field(default_factory=list)


def overview(consents: list[ImageConsent], plan: TrainingPlan) -> Overview:
    statuses = Counter(c.record.status if c.saved else NO_RECORD for c in consents)
    order = [*STATUSES, NO_RECORD]
    return Overview(
        total=len(consents),
        by_status={s: statuses[s] for s in order if statuses[s]},
        by_licence=dict(Counter(licence_label(c.record.licence) for c in consents
                                if c.saved).most_common()),
        creators=dict(sorted(Counter(c.record.creator or "unknown" for c in consents).items(),
                             key=lambda kv: kv[0].casefold())),
        trainable=len(plan.included),
        obligations=list(plan.obligations))


def rows(consents: list[ImageConsent], plan: TrainingPlan) -> list[dict[str, str]]:
    verdict = {e.image_id: e.reason for e in plan.excluded}
    return [{
        "image_id": c.image_id, "filename": c.filename, "sha256": c.sha256,
        **asdict(c.record), "licence_name": licence_label(c.record.licence),
        "recorded": "yes" if c.saved else "no", "updated_at": c.updated_at,
        "training": verdict.get(c.image_id, "included"),
    } for c in consents]


def _escape(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _unescape(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(FORMULA_STARTS) else value


def export(path: Path, style: dict[str, Any], consents: list[ImageConsent],
           plan: TrainingPlan) -> Path:
    """Write the ledger as .csv or .json; the extension decides."""
    table = rows(consents, plan)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: _escape(str(v)) for k, v in row.items()} for row in table)
        atomic_write_text(path, "\ufeff" + out.getvalue())  # BOM: spreadsheets read UTF-8
    elif suffix == ".json":
        history = {c.image_id: c.history for c in consents}
        document = {
            "format": FORMAT, "version": 1, "exported_at": utc_now(),
            "style": {k: style.get(k) for k in ("id", "name", "trigger", "family")},
            "summary": plan.summary(), "obligations": plan.obligations,
            "images": [{**row, "history": history[row["image_id"]]} for row in table],
        }
        atomic_write_text(path, json.dumps(document, indent=2, ensure_ascii=False))
    else:
        raise InvalidInput(f"A ledger is exported as .csv or .json, not '{path.suffix}'.")
    return path


def read(path: Path) -> list[dict[str, str]]:
    """Rows of a ledger file as text values; raises InvalidInput if it is not a ledger."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"'{path.name}' could not be read as a text file ({exc}).") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"'{path.name}' is not valid JSON ({exc}).") from exc
        items = data.get("images") if isinstance(data, dict) else data
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidInput(f"'{path.name}' is not a consent ledger: it has no image list.")
        return [{k: "" if v is None else str(v) for k, v in item.items()
                 if not isinstance(v, list | dict)} for item in items]
    if path.suffix.lower() != ".csv":
        raise InvalidInput(f"Import a ledger exported as .csv or .json, not '{path.name}'.")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"sha256", "image_id"} & set(reader.fieldnames):
        raise InvalidInput(f"'{path.name}' is not a consent ledger: it needs a 'sha256' or "
                           "'image_id' column.")
    return [{k: _unescape(v or "") for k, v in row.items() if k} for row in reader]
