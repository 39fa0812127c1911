"""The demo style: shipped artworks, real ingest, approved captions, cleared consent."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from style_studio.base.errors import InvalidInput, NotFound
from style_studio.base.files import sha256_file
from style_studio.demo import DEMO_DIR, DemoAssets
from style_studio.images.review import quality_warnings
from style_studio.models.tiny import build_tiny_pipeline
from style_studio.models.toy import TOY_ID
from style_studio.studio import Studio, StudioConfig

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("make_demo_style",
                                                  ROOT / "scripts" / "make_demo_style.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def assets() -> DemoAssets:
    return DemoAssets.load()


def test_demo_style_is_complete_and_trainable(studio, assets):
    style = studio.demo.open()
    count = len(assets.files)
    assert 16 <= count <= 24
    assert style.trigger == "mauvestripe" and style.family == "sd15"
    assert studio.styles.current().id == style.id

    images = studio.images.list(style.id)
    assert len(images) == count
    assert all(studio.images.path(i.id).is_file() for i in images)
    assert [i.near_duplicates for i in images] == [[]] * count  # distinct artworks
    # 256 px is the toy model's own size: nothing is flagged "small" on it, but would be
    # on a real SD 1.x base.
    assert style.base_model == TOY_ID and studio.images.items(style.id, "flagged") == []
    assert "small for Stable Diffusion 1.x" in quality_warnings(images[0], "sd15")[0]
    assert quality_warnings(replace(images[0], width=128), "sd15", TOY_ID) == [
        "small for the built-in toy model: 128×256; the short side should be at least 256 px"]
    assert sorted(i.filename.split("/")[-1] for i in images) == sorted(
        p.name for p in assets.files)

    captions = studio.caption_records.for_style(style.id)
    assert len(captions) == count
    assert all(c.approved and c.text.startswith("mauvestripe, ") for c in captions.values())
    tokens = studio.captions.tokens(style.id)  # with the toy model's own tokenizer
    assert tokens.available and tokens.limit == 77, tokens.reason
    assert len(tokens.counts) == count and all(5 < n < 77 for n in tokens.counts.values())

    consents = studio.consent.for_style(style.id)
    assert [c.badge for c in consents] == ["✓ cleared"] * count
    record = consents[0].record
    assert record.creator == "Style Studio project" and record.licence == "CC0-1.0"
    assert "CC0" in record.evidence_text and "make_demo_style.py" in record.evidence_text
    evidence = studio.workspace.style_dir(style.id) / record.evidence_file
    assert "CC0 1.0 Universal" in evidence.read_text(encoding="utf-8")

    plan = studio.consent.trainable(style.id)
    assert len(plan.included) == count and plan.excluded == []
    assert sorted(plan.image_hashes) == sorted(i.sha256 for i in images)


def test_opening_again_returns_the_same_style_unchanged(studio):
    first = studio.demo.open()
    studio.styles.create("My own", trigger="mine")
    edited = studio.images.list(first.id)[0].id
    studio.caption_records.set(edited, "mauvestripe, my own words", approved=False)
    imports = len(studio.store.find("audit", action="image.import"))

    again = studio.demo.open()
    assert again.id == first.id
    assert studio.styles.current().id == first.id  # selected again
    assert [s.name for s in studio.styles.list()].count(first.name) == 1
    assert len(studio.images.list(first.id)) == len(DemoAssets.load().files)
    assert studio.caption_records.get(edited).text == "mauvestripe, my own words"
    assert len(studio.store.find("audit", action="image.import")) == imports


def test_deleted_demo_comes_back_and_a_name_clash_keeps_the_artists_style(studio):
    first = studio.demo.open()
    studio.styles.delete(first.id)
    assert studio.demo.existing() is None
    mine = studio.styles.create(first.name, trigger="other")  # the artist took the name

    second = studio.demo.open()
    assert second.id != first.id and second.name == f"{first.name} (2)"
    assert studio.styles.get(mine.id).trigger == "other"
    assert studio.images.list(mine.id) == []
    assert len(studio.images.list(second.id)) == len(DemoAssets.load().files)


def test_base_model_is_the_toy_unless_a_real_one_is_on_this_machine(tmp_path):
    with Studio.open(tmp_path / "plain") as plain:
        assert plain.demo.open().base_model == TOY_ID
        assert plain.suggested_base_model("sd15") == TOY_ID  # new styles of the artist too
        assert plain.suggested_base_model("sdxl") is None  # the tiny SDXL; no toy of it

    folder = tmp_path / "models" / "my-sd15"  # a diffusers folder: a real model to the app
    build_tiny_pipeline("sd15", 0).save_pretrained(folder)
    with Studio.open(tmp_path / "with-default",
                     StudioConfig(default_base_model=str(folder))) as studio:
        style = studio.demo.open()
        assert style.base_model is None  # follows the app's real default
        assert studio.base_model_for(style) == str(folder)
    local = tmp_path / "local"
    shutil.copytree(folder, local / "models" / "my-sd15")
    with Studio.open(local) as studio:
        assert Path(studio.demo.open().base_model).name == "my-sd15"


def test_broken_assets_leave_nothing_behind(studio, tmp_path):
    broken = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, broken)
    first = sorted((broken / "artworks").glob("*.jpg"))[0]
    first.write_bytes(b"not a picture")
    with pytest.raises(InvalidInput, match=r"could not be set up.*recreate"):
        studio.demo.open(broken)
    assert studio.styles.list() == [] and studio.store.all("images") == []
    assert studio.demo.existing() is None

    first.with_suffix(".txt").unlink()
    with pytest.raises(NotFound, match=r"missing mauve-01\.txt.*make_demo_style\.py"):
        studio.demo.open(broken)
    assert studio.styles.list() == []


def test_shipped_artworks_are_what_the_script_draws(assets):
    info = json.loads((DEMO_DIR / "demo-style.json").read_text(encoding="utf-8"))
    assert info["licence"] == "CC0-1.0" and info["creator"] == "Style Studio project"
    assert "CC0 1.0 Universal" in (DEMO_DIR / "LICENSE.txt").read_text(encoding="utf-8")
    total = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert total < 600 * 1024

    script = _script()
    drawn = script.render(info["count"], info["size"], info["seed"])
    again = script.render(info["count"], info["size"], info["seed"])
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image))
               for a, b in zip(drawn, again, strict=True))
    assert len(drawn) == len(assets.files) == len(info["files"])
    pixels = [np.asarray(art.image, dtype=np.float32) for art in drawn]
    for k, (art, entry, path) in enumerate(zip(drawn, info["files"], assets.files, strict=True)):
        assert sha256_file(path) == entry["sha256"]
        shipped = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        error = np.abs(shipped - pixels[k]).mean()  # JPEG loss on a grainy picture: ~6
        other = np.abs(shipped - pixels[k - 1]).mean()
        assert error < 12 and error < other / 3, (path.name, error, other)
        assert path.with_suffix(".txt").read_text(encoding="utf-8").strip() == art.caption


def test_script_writes_a_complete_demo_folder(tmp_path):
    out = _script().write(tmp_path / "demo", count=3, size=64, seed=1)
    loaded = DemoAssets.load(out)
    assert [p.name for p in loaded.files] == ["mauve-01.jpg", "mauve-02.jpg", "mauve-03.jpg"]
    assert all(Image.open(p).size == (64, 64) for p in loaded.files)


def test_the_demo_ab_outputs_are_not_near_copies_of_its_artworks(assets):
    """The near-copy guard on real A/B outputs of the demo style (the toy base's and a
    trained LoRA's, seeds 1-8, tests/data/old-demo-*.png): none is flagged against the
    demo's own artworks. The journey browser test checks a fresh A/B the same way."""
    from style_studio.images.near_copy import near_copies, references

    refs = references((p.stem, p.name, p) for p in assets.files)
    strips = [Image.open(ROOT / "tests" / "data" / name).convert("RGB")
              for name in ("old-demo-base-outputs.png", "old-demo-speckle-outputs.png")]
    outputs = [strip.crop((160 * i, 0, 160 * (i + 1), 160))
               for strip in strips for i in range(strip.width // 160)]
    assert len(outputs) == 16
    assert [near_copies(o, refs) for o in outputs] == [[]] * 16
