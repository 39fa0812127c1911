"""The store keeps every document under concurrency, crashes and corruption."""

from __future__ import annotations

import json
import threading
from unittest import mock

import pytest

from style_studio.base.errors import StoreCorrupt
from style_studio.base.store import SCHEMA_VERSION, Store


def test_fifty_threads_writing_at_once_lose_nothing(tmp_path):
    store = Store(tmp_path / "studio.json")
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                store.insert("images", {"thread": n, "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    store.close()
    reopened = Store(tmp_path / "studio.json")
    docs = reopened.all("images")
    assert len(docs) == 500
    assert {(d["thread"], d["i"]) for d in docs} == {(n, i) for n in range(50) for i in range(10)}
    on_disk = json.loads((tmp_path / "studio.json").read_text())
    assert len(on_disk["images"]) == 500


def test_crash_mid_write_leaves_a_readable_store(tmp_path):
    path = tmp_path / "studio.json"
    store = Store(path)
    store.insert("styles", {"name": "kept"})

    def crash(*args, **kwargs):
        raise OSError("simulated power loss during fsync")

    with mock.patch("style_studio.base.store.os.fsync", crash), pytest.raises(OSError):
        store.insert("styles", {"name": "lost"})
    assert not list(tmp_path.glob(".studio.*.tmp")), "temp file left behind"
    reopened = Store(path)
    assert [d["name"] for d in reopened.all("styles")] == ["kept"]


def test_crash_between_renames_recovers_from_backup(tmp_path):
    path = tmp_path / "studio.json"
    store = Store(path)
    store.insert("styles", {"name": "first"})
    store.insert("styles", {"name": "second"})
    store.close()
    # A crash after moving the file to .bak but before the new file was renamed in.
    path.replace(path.with_name("studio.json.bak"))
    reopened = Store(path)
    assert [d["name"] for d in reopened.all("styles")] == ["first", "second"]
    assert any("restored" in n for n in reopened.notices)


def test_corrupt_store_is_restored_from_backup_and_kept_aside(tmp_path):
    path = tmp_path / "studio.json"
    store = Store(path)
    store.insert("styles", {"name": "a"})
    store.insert("styles", {"name": "b"})
    store.close()
    path.write_text('{"styles": {"1": {"name": "a"', encoding="utf-8")  # torn write
    reopened = Store(path)
    names = [d["name"] for d in reopened.all("styles")]
    assert names == ["a"]  # the backup is one write behind
    assert any("damaged" in n and "backup" in n for n in reopened.notices)
    damaged = list(tmp_path.glob("studio.json.damaged-*"))
    assert len(damaged) == 1 and damaged[0].read_text().startswith('{"styles": {"1"')


def test_corrupt_store_without_backup_stops_and_touches_nothing(tmp_path):
    path = tmp_path / "studio.json"
    path.write_text("not json at all", encoding="utf-8")
    with pytest.raises(StoreCorrupt, match="cannot be read"):
        Store(path)
    assert path.read_text() == "not json at all"


def test_schema_migration_hook_runs_once(tmp_path):
    path = tmp_path / "studio.json"
    Store(path).insert("styles", {"name": "old", "trigger_word": "x"}) and None

    def rename_field(store: Store) -> None:
        for doc in store.all("styles"):
            store.update("styles", doc["id"], trigger=doc.pop("trigger_word"))

    upgraded = Store(path, migrations={SCHEMA_VERSION: rename_field},
                     schema_version=SCHEMA_VERSION + 1)
    assert upgraded.all("styles")[0]["trigger"] == "x"
    assert upgraded.meta_get("schema_version") == SCHEMA_VERSION + 1
    with pytest.raises(StoreCorrupt, match="newer Style Studio"):
        Store(path)  # this version's code cannot read a file from the next one
