"""The rights vocabulary: licences, relationships, consent statuses, IPTC DataMining.

Kept apart from the consent records so that the gate, the ledger and the UI all read
one list of words, and so that what a licence demands (attribution, non-commercial,
share-alike, evidence) is decided in one place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput


@dataclass(frozen=True)
class Licence:
    """One licence of the vocabulary and what it asks of whoever trains on the image."""

    key: str
    label: str
    url: str = ""
    attribution: bool = False
    non_commercial: bool = False
    share_alike: bool = False
    own_only: bool = False  # "all rights reserved" only covers the artist's own work
    needs_evidence: bool = False  # written permission must be backed by a note or document
    needs_text: bool = False  # a custom licence is only as good as its recorded terms

    def training_problem(self, *, relationship: str, creator: str, licence_text: str,
                         has_evidence: bool) -> str | None:
        """Why this licence, as recorded, does not allow training; None when it does."""
        if self.own_only and relationship != "own":
            shown = RELATIONSHIPS.get(relationship, "not recorded")
            return (f"'{self.label}' only covers your own work, but the relationship is "
                    f"'{shown}'; record the licence or permission you were given")
        if self.needs_evidence and not has_evidence:
            return "written permission needs evidence: a note or a document"
        if self.needs_text and not licence_text.strip():
            return "a custom licence needs its terms; paste the licence text"
        if self.attribution and not creator.strip():
            return f"{self.label} requires attribution, but no creator is recorded"
        return None


_CC = "https://creativecommons.org/licenses/"
LICENCES: dict[str, Licence] = {lic.key: lic for lic in (
    Licence("own-work", "Own work – all rights reserved", own_only=True),
    Licence("CC0-1.0", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
    Licence("CC-BY-4.0", "CC BY 4.0", _CC + "by/4.0/", attribution=True),
    Licence("CC-BY-SA-4.0", "CC BY-SA 4.0", _CC + "by-sa/4.0/", attribution=True,
            share_alike=True),
    Licence("CC-BY-NC-4.0", "CC BY-NC 4.0", _CC + "by-nc/4.0/", attribution=True,
            non_commercial=True),
    Licence("CC-BY-NC-SA-4.0", "CC BY-NC-SA 4.0", _CC + "by-nc-sa/4.0/", attribution=True,
            non_commercial=True, share_alike=True),
    Licence("public-domain", "Public domain"),
    Licence("written-permission", "Written permission", needs_evidence=True),
    Licence("custom", "Custom licence (text)", needs_text=True),
)}
# Licences that can lift a "no AI training" flag embedded in the file: the artist's own
# word about their own work, or the rights holder's written permission.
OVERRIDES_METADATA_REFUSAL = ("own-work", "written-permission")
# How the gate words a CC BY obligation; erasure rewrites the creators after it.
ATTRIBUTION = "attribution required (CC BY): credit "

RELATIONSHIPS: dict[str, str] = {
    "own": "Own work",
    "client": "Client / commission",
    "licensed": "Licensed",
    "public-domain": "Public domain",
    "other": "Other",
}
STATUSES: dict[str, str] = {
    "cleared": "Cleared",
    "pending": "Pending",
    "refused": "Refused",
    "revoked": "Revoked",
}

# IPTC / PLUS `plus:DataMining` (http://ns.useplus.org/ldf/vocab/DMI-...).
DATA_MINING: dict[str, tuple[str, bool]] = {
    "DMI-UNSPECIFIED": ("unspecified", False),
    "DMI-ALLOWED": ("allowed", False),
    "DMI-PROHIBITED": ("data mining prohibited", True),
    "DMI-PROHIBITED-AIMLTRAINING": ("prohibited for AI/ML training", True),
    "DMI-PROHIBITED-GENAIMLTRAINING": ("prohibited for generative AI/ML training", True),
    "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING":
        ("prohibited except for search-engine indexing", True),
    "DMI-PROHIBITED-SEECONSTRAINT": ("prohibited, see the file's other constraints", True),
    "DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR":
        ("prohibited, see the file's embedded rights expression", True),
    "DMI-PROHIBITED-SEELINKEDRIGHTSEXPR":
        ("prohibited, see the file's linked rights expression", True),
}


def _lookup(value: str | None, vocabulary: dict[str, str], what: str) -> str:
    """Accept a key or its label in any case; '' stays ''; anything else is refused."""
    text = " ".join((value or "").split())
    if not text:
        return ""
    for key, label in vocabulary.items():
        if text.casefold() in (key.casefold(), label.casefold()):
            return key
    choices = ", ".join(f"'{label}'" for label in vocabulary.values())
    raise InvalidInput(f"Unknown {what} '{text}'. Choose one of: {choices}.")


def licence_key(value: str | None) -> str:
    return _lookup(value, {k: lic.label for k, lic in LICENCES.items()}, "licence")


def relationship_key(value: str | None) -> str:
    return _lookup(value, RELATIONSHIPS, "relationship")


def status_key(value: str | None) -> str:
    return _lookup(value, STATUSES, "consent status") or "pending"


def licence_label(key: str) -> str:
    return LICENCES[key].label if key in LICENCES else "no licence"


def data_mining_refusal(value: str | None) -> str | None:
    """The reason an embedded `plus:DataMining` value forbids training, else None.

    Values may be the full PLUS URI or the bare code; an unknown code that still says
    PROHIBITED is treated as a prohibition, because guessing "allowed" is the costly error.
    """
    text = (value or "").strip()
    if not text:
        return None
    code = text.rstrip("/").rsplit("/", 1)[-1].upper()
    label, prohibits = DATA_MINING.get(code, (text, "PROHIBITED" in code))
    if not prohibits:
        return None
    return f"the file's metadata says {label} (IPTC plus:DataMining {code})"


def metadata_refusal(source_meta: dict[str, Any] | None) -> str | None:
    """Why the file's own metadata forbids training: IPTC DataMining first, then the C2PA
    training-mining assertion (its reason was worded at import, in credentials/signals)."""
    meta = source_meta or {}
    return data_mining_refusal(meta.get("data_mining")) or meta.get("training_mining_refusal")


_LICENCE_PATTERNS = (
    (re.compile(r"\bCC0\b|publicdomain/zero", re.I), "CC0-1.0"),
    (re.compile(r"\bCC[- ]?BY[- ]?NC[- ]?SA[- ]?4\.0|licenses/by-nc-sa/4\.0", re.I),
     "CC-BY-NC-SA-4.0"),
    (re.compile(r"\bCC[- ]?BY[- ]?NC[- ]?4\.0|licenses/by-nc/4\.0", re.I), "CC-BY-NC-4.0"),
    (re.compile(r"\bCC[- ]?BY[- ]?SA[- ]?4\.0|licenses/by-sa/4\.0", re.I), "CC-BY-SA-4.0"),
    (re.compile(r"\bCC[- ]?BY[- ]?4\.0|licenses/by/4\.0", re.I), "CC-BY-4.0"),
    (re.compile(r"\bpublic domain\b", re.I), "public-domain"),
)


def licence_from_text(text: str | None) -> str:
    """Recognise a licence named in a rights notice; '' when it is not one we know."""
    for pattern, key in _LICENCE_PATTERNS:
        if text and pattern.search(text):
            return key
    return ""
