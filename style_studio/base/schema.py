"""The database's schema version and the steps that bring an older file up to it.

`Store` runs the steps in order when it opens a file written at an older version, in one
write, and tells the artist once. Each step is a plain function of the documents, kept
here rather than in the services so that opening the store never needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .licences import LEGACY_KEYS

SCHEMA_VERSION = 2


class Documents(Protocol):
    """What a migration step uses of the store."""

    def tables(self) -> list[str]: ...
    def all(self, table: str) -> list[dict[str, Any]]: ...
    def update(self, table: str, doc_id: str, **fields: Any) -> dict[str, Any]: ...


Migration = Callable[[Documents], None]


def _spdx_values(value: Any) -> Any:
    """`value` with every old licence key under a `licence` field (and every key of a
    `licences` count) replaced by its SPDX id, at any depth (a consent's history too)."""
    if isinstance(value, list):
        return [_spdx_values(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key == "licence" and isinstance(item, str):
            out[key] = LEGACY_KEYS.get(item, item)
        elif key == "licences" and isinstance(item, dict):
            out[key] = {LEGACY_KEYS.get(k, k): n for k, n in item.items()}
        else:
            out[key] = _spdx_values(item)
    return out


def licences_to_spdx(store: Documents) -> None:
    """Schema 1 → 2: licences become SPDX ids (`own-work` → `LicenseRef-OwnWork`, …) in
    consent records and their history, and wherever else a record holds one."""
    for table in store.tables():
        for doc in store.all(table):
            new = _spdx_values(doc)
            if new != doc and "id" in doc:
                store.update(table, doc["id"], **{k: v for k, v in new.items() if k != "id"})


MIGRATIONS: dict[int, Migration] = {1: licences_to_spdx}
