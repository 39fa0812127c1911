"""The rights vocabulary: licences, relationships, consent statuses, IPTC DataMining.

Kept apart from the consent records so that the gate, the ledger and the UI all read
one list of words, and so that what a licence demands (attribution, non-commercial,
share-alike, evidence) is decided in one place.

Licences are stored as SPDX identifiers, so a ledger, a manifest or a card means the same
to any tool that reads SPDX: the list's own ids for Creative Commons, and `LicenseRef-…`
ids (SPDX's form for terms the list does not have) for own work, public domain, written
permission and custom terms. Records written before schema 2 used short keys
(`own-work`, …); the store migrates them (`schema.py`), and files that cannot change (a
run's manifest is hashed) are read through `spdx_id`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from .errors import InvalidInput

if TYPE_CHECKING:
    from license_expression import Licensing


@dataclass(frozen=True)
class Licence:
    """One licence of the vocabulary and what it asks of whoever trains on the image."""

    key: str  # an SPDX identifier: the SPDX list's own, or LicenseRef-…
    label: str
    url: str = ""
    hub: str = ""  # the Hugging Face Hub's licence id, where the Hub has one
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
OWN_WORK = "LicenseRef-OwnWork"
PUBLIC_DOMAIN = "LicenseRef-PublicDomain"
WRITTEN_PERMISSION = "LicenseRef-WrittenPermission"
CUSTOM = "LicenseRef-Custom"
LICENCES: dict[str, Licence] = {lic.key: lic for lic in (
    Licence(OWN_WORK, "Own work – all rights reserved", own_only=True),
    Licence("CC0-1.0", "CC0 1.0", "https://creativecommons.org/publicdomain/zero/1.0/",
            hub="cc0-1.0"),
    Licence("CC-BY-4.0", "CC BY 4.0", _CC + "by/4.0/", hub="cc-by-4.0", attribution=True),
    Licence("CC-BY-SA-4.0", "CC BY-SA 4.0", _CC + "by-sa/4.0/", hub="cc-by-sa-4.0",
            attribution=True, share_alike=True),
    Licence("CC-BY-NC-4.0", "CC BY-NC 4.0", _CC + "by-nc/4.0/", hub="cc-by-nc-4.0",
            attribution=True, non_commercial=True),
    Licence("CC-BY-NC-SA-4.0", "CC BY-NC-SA 4.0", _CC + "by-nc-sa/4.0/", hub="cc-by-nc-sa-4.0",
            attribution=True, non_commercial=True, share_alike=True),
    Licence(PUBLIC_DOMAIN, "Public domain"),
    Licence(WRITTEN_PERMISSION, "Written permission", needs_evidence=True),
    Licence(CUSTOM, "Custom licence (text)", needs_text=True),
)}
# The keys records held before schema 2, and the SPDX ids that replaced them.
LEGACY_KEYS: dict[str, str] = {"own-work": OWN_WORK, "public-domain": PUBLIC_DOMAIN,
                               "written-permission": WRITTEN_PERMISSION, "custom": CUSTOM}
# Licences that can lift a "no AI training" flag embedded in the file: the artist's own
# word about their own work, or the rights holder's written permission.
OVERRIDES_METADATA_REFUSAL = (OWN_WORK, WRITTEN_PERMISSION)
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


def spdx_id(key: str) -> str:
    """The SPDX id for a stored licence key: files written before schema 2 (manifests,
    ledgers) still hold the old short keys, and are read through this."""
    return LEGACY_KEYS.get(key, key)


def licence_for(key: str) -> Licence | None:
    """The vocabulary entry for a stored key (old or SPDX); None when it is not one."""
    return LICENCES.get(spdx_id(key))


def licence_key(value: str | None) -> str:
    """The SPDX id for what a person or a ledger wrote: an id, a label or an old key, in
    any case; '' stays ''. Anything else is refused with the closest match named."""
    text = " ".join((value or "").split())
    if not text:
        return ""
    folded = text.casefold()
    for key, lic in LICENCES.items():
        if folded in (key.casefold(), lic.label.casefold()):
            return key
    for old, key in LEGACY_KEYS.items():
        if folded == old:
            return key
    raise InvalidInput(_unknown_licence(text))


@cache
def _spdx() -> Licensing:
    """The SPDX licence list bundled with `license-expression` (no network)."""
    from license_expression import get_spdx_licensing
    return get_spdx_licensing()


_LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")


def spdx_problem(expression: str) -> str | None:
    """Why `expression` is not valid SPDX (None when it is): an id from the bundled SPDX
    list, an expression of them (`MIT OR Apache-2.0`), or a well-formed LicenseRef-…"""
    if _LICENSE_REF.fullmatch(expression):
        return None
    errors, normalized = _validate(expression)
    if errors:
        return "; ".join(errors)
    if normalized != expression:
        return f"SPDX writes it '{normalized}'"
    return None


def _validate(expression: str) -> tuple[list[str], str | None]:
    """license-expression's errors and normalised form for `expression`."""
    from license_expression import ExpressionError
    try:
        info = _spdx().validate(expression)
    except (ExpressionError, AttributeError) as exc:
        # validate() itself raises on some malformed input ("MIT OR", an odd operator)
        return [str(exc) or "not an SPDX expression"], None
    return list(info.errors), info.normalized_expression


def _unknown_licence(text: str) -> str:
    """The sentence for a licence outside the vocabulary: a valid SPDX licence we cannot
    judge, or (most often) a typo, with the nearest entry named."""
    choices = ", ".join(f"'{lic.label}' ({key})" for key, lic in LICENCES.items())
    if not _validate(text)[0]:
        return (f"'{text}' is a valid SPDX licence, but Style Studio does not know what it "
                f"asks of whoever trains on the image. Choose '{LICENCES[CUSTOM].label}' "
                f"and paste its terms, or one of: {choices}.")
    names = {key.casefold(): key for key in LICENCES}
    names.update({lic.label.casefold(): key for key, lic in LICENCES.items()})
    names.update({old.casefold(): key for old, key in LEGACY_KEYS.items()})
    close = difflib.get_close_matches(text.casefold(), list(names), n=1, cutoff=0.5)
    if close:
        key = names[close[0]]
        return (f"Unknown licence '{text}'. Did you mean '{key}' ({LICENCES[key].label})? "
                f"Choose one of: {choices}.")
    return f"Unknown licence '{text}'. Choose one of: {choices}."


def relationship_key(value: str | None) -> str:
    return _lookup(value, RELATIONSHIPS, "relationship")


def status_key(value: str | None) -> str:
    return _lookup(value, STATUSES, "consent status") or "pending"


def licence_label(key: str) -> str:
    """The words a person reads for a stored key (old or SPDX); an unknown id as it is."""
    found = licence_for(key)
    return found.label if found else (key or "no licence")


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
    (re.compile(r"\bpublic domain\b", re.I), PUBLIC_DOMAIN),
)


def licence_from_text(text: str | None) -> str:
    """Recognise a licence named in a rights notice; '' when it is not one we know."""
    for pattern, key in _LICENCE_PATTERNS:
        if text and pattern.search(text):
            return key
    return ""
