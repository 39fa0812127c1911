"""Styles: create, rename, switch, delete with their files and records."""

from __future__ import annotations

import pytest

from style_studio.base.errors import InvalidInput, NotFound
from style_studio.studio import Studio


def test_create_rename_switch_delete(studio):
    ink = studio.styles.create("Ink washes", trigger="inkwash", family="sd15", notes="grey")
    oil = studio.styles.create("Oil nights", trigger="oilnight", family="sdxl")
    assert [s.name for s in studio.styles.list()] == ["Ink washes", "Oil nights"]
    assert studio.styles.current().id == oil.id  # a new style becomes current
    studio.styles.select(ink.id)
    assert studio.styles.current().id == ink.id
    renamed = studio.styles.rename(ink.id, "Ink & water")
    assert renamed.name == "Ink & water" and renamed.trigger == "inkwash"
    folder = studio.workspace.style_dir(ink.id)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "images" / "x.png").write_bytes(b"fake")
    studio.store.insert("images", {"style_id": ink.id, "sha256": "abc"})
    studio.styles.delete(ink.id)
    assert not folder.exists()
    assert studio.store.find("images", style_id=ink.id) == []
    with pytest.raises(NotFound):
        studio.styles.get(ink.id)
    assert studio.styles.current().id == oil.id
    actions = [a["action"] for a in studio.store.all("audit")]
    assert actions.count("style.delete") == 1 and "style.update" in actions


@pytest.mark.parametrize("kwargs, words", [
    ({"name": "  "}, "needs a name"),
    ({"name": "A", "trigger": "two words"}, "one word"),
    ({"name": "A", "family": "sd3"}, "Unknown base-model family"),
])
def test_bad_values_are_refused_with_a_reason(studio, kwargs, words):
    with pytest.raises(InvalidInput, match=words):
        studio.styles.create(**kwargs)


def test_duplicate_names_are_refused(studio):
    studio.styles.create("Ink washes")
    with pytest.raises(InvalidInput, match="already exists"):
        studio.styles.create("ink  WASHES")


def test_styles_survive_a_restart(tmp_path):
    with Studio.open(tmp_path / "ws") as first:
        made = first.styles.create("Ink washes", trigger="inkwash", family="sdxl")
    with Studio.open(tmp_path / "ws") as second:
        again = second.styles.current()
        assert again == made


def test_a_page_keeps_its_own_style_and_a_new_page_gets_the_last_choice(studio):
    ink = studio.styles.create("Ink washes")
    oil = studio.styles.create("Oil nights")
    assert studio.styles.for_page(ink.id).id == ink.id  # the page's own choice wins
    assert studio.styles.for_page(None).id == oil.id  # a new page: the last chosen
    assert studio.styles.for_page("gone").id == oil.id  # a deleted style falls back
    studio.styles.select(ink.id)
    assert studio.styles.for_page(None).id == ink.id
    assert studio.styles.for_page(oil.id).id == oil.id
