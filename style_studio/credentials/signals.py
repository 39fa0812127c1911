"""Training-and-data-mining signals in an uploaded file's Content Credentials.

A creator can say "no AI training" inside the file: IPTC `plus:DataMining` (read in
images/meta.py) or a C2PA manifest with a `cawg.training-mining` assertion (or the older
`c2pa.training-mining` label). Both prefill the consent record as refused, with the
reason. A signal is honoured even when its signature does not verify or is not trusted:
wrongly training on a refusal is the costly error, and the reason says how it was signed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from c2pa import C2paError

from . import c2pa_io

log = logging.getLogger(__name__)

LABELS = ("cawg.training-mining", "c2pa.training-mining")
# The uses whose refusal forbids training a LoRA on the image (inference does not).
TRAINING_USES = ("ai_training", "ai_generative_training", "data_mining")
NOT_ALLOWED, CONSTRAINED = "notAllowed", "constrained"
WORDS = {"ai_training": "AI training", "ai_generative_training": "generative AI training",
         "data_mining": "data mining", "ai_inference": "AI inference"}


@dataclass(frozen=True)
class TrainingSignal:
    """What a file's manifest says about training and mining, and how far to trust it."""

    label: str
    uses: dict[str, str]  # "ai_training" -> "notAllowed"
    constraints: dict[str, str] = field(default_factory=dict)
    signer: str = ""
    state: str = ""  # c2pa validation_state: Trusted, Valid or Invalid
    from_ingredient: str = ""  # title of the earlier version whose manifest said it

    @property
    def refused(self) -> bool:
        return any(self.uses.get(use) == NOT_ALLOWED for use in TRAINING_USES)

    @property
    def constrained(self) -> bool:
        return any(self.uses.get(use) == CONSTRAINED for use in TRAINING_USES)

    def summary(self) -> str:
        """The entries as found, for the image's details: 'ai_training notAllowed, ...'."""
        parts = [f"{use} {value}" + (f" ({self.constraints[use]})" if use in self.constraints
                                     else "")
                 for use, value in sorted(self.uses.items())]
        return f"{self.label}: " + ", ".join(parts)

    def reason(self) -> str:
        """Why consent is refused (or what the constraint is), in the Consent tab's words."""
        refused = [WORDS.get(u, u) for u in TRAINING_USES if self.uses.get(u) == NOT_ALLOWED]
        constrained = [WORDS.get(u, u) for u in TRAINING_USES if self.uses.get(u) == CONSTRAINED]
        if refused:
            said = f"does not allow {' or '.join(refused)}"
        elif constrained:
            said = f"allows {' or '.join(constrained)} only under a constraint: " + "; ".join(
                self.constraints.get(u, "not stated") for u in TRAINING_USES
                if self.uses.get(u) == CONSTRAINED)
        else:
            said = "allows AI training"
        where = (f"the Content Credentials of an earlier version ({self.from_ingredient})"
                 if self.from_ingredient else "the file's Content Credentials")
        return f"{where} say the creator {said} ({self.label}, {self._signed()})"

    def _signed(self) -> str:
        who = f"signed by {self.signer}" if self.signer else "signer unnamed"
        if self.state == "Invalid":
            return who + ", signature broken"
        if self.state == "Trusted":
            return who + ", trusted"
        return who + ", signer not verified"


def entries_of(data: Mapping[str, Any] | None) -> dict[str, tuple[str, str]]:
    """{"cawg.ai_training": ("notAllowed", constraint)} from a training-mining assertion."""
    entries = (data or {}).get("entries") or {}
    if not isinstance(entries, Mapping):
        return {}
    found = {}
    for key, entry in entries.items():
        if isinstance(entry, Mapping) and entry.get("use"):
            found[str(key)] = (str(entry["use"]), str(entry.get("constraint_info") or ""))
    return found


def read_training_signal(path: Path, mime: str | None = None) -> TrainingSignal | None:
    """The training-mining signal of an uploaded file, or None (no manifest, or no signal).

    The active manifest speaks first; when it says nothing, the manifests of its
    ingredients (earlier versions of the file) are read. Damaged credentials never stop
    an import: they are logged and read as no signal.
    """
    try:
        report = c2pa_io.read_store(Path(path), mime)
    except (C2paError, OSError, ValueError):
        log.info("unreadable Content Credentials in %s", Path(path).name, exc_info=True)
        return None
    if not report:
        return None
    manifests = report.get("manifests") or {}
    active = manifests.get(report.get("active_manifest") or "") or {}
    state = str(report.get("validation_state", ""))
    signal = _signal(active, state)
    if signal is not None:
        return signal
    for ingredient in active.get("ingredients") or []:
        parent = manifests.get(ingredient.get("active_manifest") or "")
        signal = _signal(parent or {}, state, str(ingredient.get("title") or "an ingredient"))
        if signal is not None:
            return signal
    return None


def _signal(manifest: Mapping[str, Any], state: str,
            from_ingredient: str = "") -> TrainingSignal | None:
    for label in LABELS:
        for assertion in manifest.get("assertions") or []:
            if assertion.get("label") != label:
                continue
            found = entries_of(assertion.get("data"))
            if not found:
                continue
            info = manifest.get("signature_info") or {}
            return TrainingSignal(
                label=label, uses={k.split(".", 1)[-1]: use for k, (use, _) in found.items()},
                constraints={k.split(".", 1)[-1]: c for k, (_, c) in found.items() if c},
                signer=str(info.get("common_name") or info.get("issuer") or ""),
                state=state, from_ingredient=from_ingredient)
    return None
