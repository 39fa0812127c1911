"""Captions: tiny captioners through the real loading path, the batch job (progress,
failures, cancel), approval, bulk edits with undo, token limit, wording, sidecars."""

from __future__ import annotations

import io
import shutil
import threading
import time
import zipfile

import huggingface_hub.constants
import pytest
import torch
from PIL import Image, ImageDraw
from transformers import (
    BertTokenizer,
    BlipForConditionalGeneration,
    BlipProcessor,
    CLIPImageProcessor,
    CLIPTokenizer,
    Florence2ForConditionalGeneration,
    GitConfig,
    GitForCausalLM,
    GitProcessor,
)

from style_studio.base.errors import InvalidInput, ModelUnavailable
from style_studio.base.files import sha256_bytes
from style_studio.base.store import utc_now
from style_studio.captions.captioners import Captioner, describe_captioner, load_captioner
from style_studio.captions.edits import UNDO_TABLE
from style_studio.captions.tiny_captioners import WORDS, ensure_tiny_captioner
from style_studio.captions.wording import (
    TokenReport,
    _per_character,
    find_people_words,
    load_word_list,
)
from style_studio.models.tiny import ensure_tiny_model
from style_studio.studio import Studio

BLIP_HUB = "Salesforce/blip-image-captioning-base"


def add_image(studio: Studio, style_id: str, name: str, color=(180, 40, 40),
              data: bytes | None = None) -> str:
    """An image record as the Images tab stores it (data contract of the images table)."""
    if data is None:
        image = Image.new("RGB", (48, 40), color)
        ImageDraw.Draw(image).ellipse((8, 6, 30, 28), fill=(color[2], color[0], color[1]))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        data = buffer.getvalue()
    sha = sha256_bytes(data + name.encode())
    stored = studio.workspace.images_dir(style_id) / f"{sha}.png"
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(data)
    doc = studio.store.insert("images", {
        "style_id": style_id, "filename": name, "stored_path": f"images/{sha}.png",
        "thumb_path": None, "sha256": sha, "source_sha256": sha, "width": 48, "height": 40,
        "format": "PNG", "phash": "", "warnings": [], "near_duplicates": [],
        "source_meta": {}, "added_at": utc_now()})
    return doc["id"]


@pytest.fixture
def images(studio, style):
    colors = [(200, 30, 30), (30, 160, 60), (40, 60, 200)]
    return [add_image(studio, style.id, f"heron-{i}.png", c) for i, c in enumerate(colors)]


def run_auto(studio, style_id, **kwargs):
    job = studio.captions.auto(style_id, model="tiny-blip", **kwargs)
    return studio.jobs.wait(job.id, timeout=120)


# --------------------------------------------------------------------------- captioners


def test_tiny_blip_is_saved_and_loaded_like_a_real_model(tmp_path):
    folder = ensure_tiny_captioner("tiny-blip", tmp_path)
    for name in ("config.json", "model.safetensors", "tokenizer_config.json",
                 "processor_config.json"):
        assert (folder / name).is_file(), name
    captioner = load_captioner("tiny-blip", tmp_path)
    assert isinstance(captioner.model, BlipForConditionalGeneration)
    assert isinstance(captioner.processor, BlipProcessor)
    # The offline tokenizer really knows its words (transformers 5 pitfall: a vocab
    # passed the wrong way turns every token into [UNK]).
    tokenizer = captioner.processor.tokenizer
    ids = tokenizer("a red heron", add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids and len(ids) == 3
    red = captioner.caption(Image.new("RGB", (64, 64), (220, 20, 20)))
    assert red and set(red.split()) <= set(WORDS)
    # The same folder picked as a local model goes through the same loader and agrees.
    as_folder = load_captioner(str(folder), tmp_path / "elsewhere")
    assert as_folder.caption(Image.new("RGB", (64, 64), (220, 20, 20))) == red
    assert as_folder.revision == captioner.revision
    assert captioner.revision.startswith("config-sha256:")


def test_tiny_florence2_goes_through_the_same_path(tmp_path):
    captioner = load_captioner("tiny-florence2", tmp_path)
    assert isinstance(captioner.model, Florence2ForConditionalGeneration)
    assert captioner.backend == "florence2"
    image = Image.new("RGB", (80, 50), (20, 120, 200))
    assert captioner.caption(image)
    assert captioner.caption(image, detailed=True)


def test_any_image_to_text_folder_loads_through_the_auto_classes(tmp_path):
    """A model that is neither BLIP nor Florence-2 (here a tiny GIT, decoder-only) is
    loaded with AutoModelForImageTextToText + AutoProcessor from its folder."""
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS])}
    processor = GitProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                           crop_size={"height": 32, "width": 32}),
        tokenizer=BertTokenizer(vocab=vocab, do_lower_case=True))
    config = GitConfig(
        vision_config={"hidden_size": 32, "image_size": 32, "patch_size": 8,
                       "num_hidden_layers": 1, "num_attention_heads": 4,
                       "intermediate_size": 37},
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=128, bos_token_id=vocab["[CLS]"],
        eos_token_id=vocab["[SEP]"], pad_token_id=0)
    folder = tmp_path / "my-captioner"
    torch.manual_seed(0)
    GitForCausalLM(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    captioner = load_captioner(str(folder), tmp_path)
    assert captioner.backend == "generic" and isinstance(captioner.model, GitForCausalLM)
    words = captioner.caption(Image.new("RGB", (50, 40), (200, 10, 10)))
    assert words and set(words.split()) <= set(WORDS)


def test_a_hub_model_missing_offline_fails_at_once_naming_the_fetch_command(studio, style,
                                                                            images):
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=f"hf download {BLIP_HUB}"):
        load_captioner(BLIP_HUB, studio.captions.captioners_dir)
    with pytest.raises(ModelUnavailable, match="hf download"):
        studio.captions.auto(style.id, model=BLIP_HUB)
    assert time.monotonic() - started < 10
    assert studio.jobs.list(kind="caption") == []
    listed = {s.ref: s for s in studio.captions.list_captioners()}
    assert not listed[BLIP_HUB].available and "hf download" in listed[BLIP_HUB].detail
    assert "random weights" in listed["tiny-blip"].label
    assert studio.captions.default_captioner() == BLIP_HUB  # never the random one


def test_a_cached_hub_model_loads_offline_and_reports_its_commit(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--artist--my-blip"
    shutil.copytree(ensure_tiny_captioner("tiny-blip", tmp_path / "built"),
                    repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    assert describe_captioner("artist/my-blip", tmp_path).available
    captioner = load_captioner("artist/my-blip", tmp_path)
    assert captioner.revision == commit
    assert captioner.caption(Image.new("RGB", (40, 40), "white"))


# --------------------------------------------------------------------------- batch job


def test_batch_captions_as_drafts_with_origin_and_trigger_and_reports_a_bad_image(
        studio, style, images):
    bad = add_image(studio, style.id, "broken.png", data=b"not an image at all")
    job = run_auto(studio, style.id)
    assert job.status == "done", job.error
    assert job.progress == 1.0
    assert job.extra["done"] == job.extra["total"] == 4
    assert [f["filename"] for f in job.result["failures"]] == ["broken.png"]
    assert job.result["failures"][0]["image_id"] == bad
    assert job.result["captioned"] == 3
    for image_id in images:
        caption = studio.captions.get(image_id)
        assert caption.status == "draft"
        assert caption.text.startswith("inkwash, ") and len(caption.text) > len("inkwash, ")
        assert caption.origin.kind == "auto" and caption.origin.model == "tiny-blip"
        assert caption.origin.revision.startswith("config-sha256:")
    assert studio.captions.get(bad) is None
    assert studio.captions.approved(style.id) == {}
    assert studio.captions.captioners.loaded_ref == "tiny-blip"
    assert studio.captions.unload() is True
    assert studio.captions.captioners.loaded_ref is None


def test_trigger_goes_where_the_placeholder_stands(studio, style, images):
    job = run_auto(studio, style.id, image_ids=images[:1],
                   template="a painting by [trigger] of {caption}")
    assert job.status == "done", job.error
    text = studio.captions.get(images[0]).text
    assert text.startswith("a painting by inkwash of ") and "[trigger]" not in text
    with pytest.raises(InvalidInput, match="caption"):
        studio.captions.auto(style.id, model="tiny-blip", template="[trigger] only")


def test_auto_never_replaces_approved_words_unless_asked(studio, style, images):
    studio.captions.approve(images[0], "inkwash, my own words")
    studio.captions.set(images[1], "inkwash, a draft I wrote")
    job = run_auto(studio, style.id)
    reasons = {s["image_id"]: s["reason"] for s in job.result["skipped"]}
    assert "approved" in reasons[images[0]] and "caption" in reasons[images[1]]
    assert studio.captions.get(images[0]).text == "inkwash, my own words"
    assert studio.captions.get(images[1]).text == "inkwash, a draft I wrote"
    assert studio.captions.get(images[2]).origin.kind == "auto"

    run_auto(studio, style.id, overwrite=True)
    assert studio.captions.get(images[0]).text == "inkwash, my own words"
    assert studio.captions.get(images[0]).status == "approved"
    assert studio.captions.get(images[1]).origin.kind == "auto"

    run_auto(studio, style.id, replace_approved=True)
    replaced = studio.captions.get(images[0])
    assert replaced.origin.kind == "auto" and replaced.status == "draft"


def test_cancel_stops_between_images_and_keeps_what_was_done(studio, style, images,
                                                            monkeypatch):
    second_started = threading.Event()
    release = threading.Event()
    real_caption = Captioner.caption
    calls = []

    def slow_second(self, image, detailed=False):
        calls.append(1)
        if len(calls) == 2:
            second_started.set()
            release.wait(30)
        return real_caption(self, image, detailed)

    monkeypatch.setattr(Captioner, "caption", slow_second)
    job = studio.captions.auto(style.id, model="tiny-blip")
    assert second_started.wait(60)
    studio.jobs.cancel(job.id)
    release.set()
    job = studio.jobs.wait(job.id, timeout=60)
    assert job.status == "cancelled"
    assert len(calls) == 2  # the third image was never started
    done = [i for i in images if studio.captions.get(i)]
    assert len(done) == 2 and studio.captions.get(images[2]) is None
    # What the cancelled batch wrote can still be undone as one step.
    assert studio.captions.edits.last(style.id).count == 2


# --------------------------------------------------------------------------- approval


def test_approval_is_what_the_training_gate_reads(studio, style, images):
    studio.captions.set(images[0], "[trigger], a heron in reeds")
    assert studio.captions.get(images[0]).text == "inkwash, a heron in reeds"
    assert studio.captions.approved(style.id) == {}
    with pytest.raises(InvalidInput, match="empty caption"):
        studio.captions.approve(images[1], "   ")
    studio.captions.approve(images[0])
    assert list(studio.captions.approved(style.id)) == [images[0]]
    plan = studio.consent.trainable(style.id)
    reasons = {e.image_id: e.reason for e in plan.excluded}
    assert "no approved caption" not in reasons.get(images[0], "")
    assert "no approved caption" in reasons[images[1]]
    studio.captions.unapprove(images[0])
    assert studio.captions.get(images[0]).status == "draft"
    assert studio.captions.approved(style.id) == {}


def test_editing_an_auto_caption_keeps_where_it_came_from(studio, style, images):
    run_auto(studio, style.id, image_ids=images[:1])
    studio.captions.approve(images[0])  # approved unchanged: still the model's words
    assert studio.captions.get(images[0]).origin.kind == "auto"
    edited = studio.captions.approve(images[0], "inkwash, a grey heron")
    assert edited.origin.kind == "manual" and edited.origin.model == "tiny-blip"


# --------------------------------------------------------------------------- bulk edits


def test_bulk_edits_and_exact_undo_that_survives_a_restart(studio, style, images, tmp_path):
    studio.captions.approve(images[0], "inkwash, a woman by the river")
    studio.captions.set(images[1], "inkwash, a heron, woman, reeds")
    studio.captions.set(images[2], "inkwash, ink wash of a boat")
    before = {i: studio.captions.get(i) for i in images}

    report = studio.captions.edits.replace(style.id, "woman", "figure", whole_word=True)
    assert report.changed == 2 and report.unchanged == 1
    assert studio.captions.get(images[0]).text == "inkwash, a figure by the river"
    assert studio.captions.get(images[0]).status == "approved"
    undone = studio.captions.edits.undo(style.id)
    assert undone.restored == 2
    for image_id in images:
        caption = studio.captions.get(image_id)
        assert (caption.text, caption.status, caption.origin) == (
            before[image_id].text, before[image_id].status, before[image_id].origin)
    with pytest.raises(InvalidInput, match="no bulk edit"):
        studio.captions.edits.undo(style.id)

    studio.captions.edits.remove_word(style.id, "woman")
    assert studio.captions.get(images[1]).text == "inkwash, a heron, reeds"
    studio.captions.edits.add_suffix(style.id, ", ink on paper")
    assert studio.captions.get(images[2]).text == "inkwash, ink wash of a boat, ink on paper"
    studio.captions.edits.add_prefix(style.id, "masterwork,")
    assert studio.captions.get(images[2]).text.startswith("masterwork, inkwash, ink wash")

    # The undo snapshot lives in the store: a restart can still undo the last edit,
    # and a caption edited after it keeps the artist's newer words.
    studio.captions.set(images[1], "my newer words")
    workspace = studio.workspace.root
    studio.close()
    with Studio.open(workspace) as reopened:
        assert reopened.captions.edits.last(style.id).label == "Add prefix 'masterwork,'"
        report = reopened.captions.edits.undo(style.id)
        assert report.restored == 2 and report.kept == [images[1]]
        assert reopened.captions.get(images[2]).text == "inkwash, ink wash of a boat, ink on paper"
        assert reopened.captions.get(images[1]).text == "my newer words"


def test_an_edit_that_empties_an_approved_caption_returns_it_to_draft(studio, style, images):
    studio.captions.approve(images[0], "heron")
    report = studio.captions.edits.remove_word(style.id, "heron")
    assert report.emptied == 1
    caption = studio.captions.get(images[0])
    assert caption.text == "" and caption.status == "draft"
    studio.captions.edits.undo(style.id)
    assert studio.captions.get(images[0]).status == "approved"


def test_erasing_an_image_drops_its_words_from_the_undo_record(studio, style, images):
    studio.captions.set(images[0], "inkwash, a heron")
    studio.captions.edits.add_suffix(style.id, ", ink")
    assert studio.store.get(UNDO_TABLE, images[0]) is not None
    studio.erasure.erase_image(images[0], reason="deletion request")
    assert studio.store.get(UNDO_TABLE, images[0]) is None


# --------------------------------------------------------------------------- words


def test_token_limit_is_counted_with_the_base_models_own_tokenizer(studio, style, images):
    short, long = "inkwash, a heron", "inkwash, " + "a grey heron standing in reeds " * 4
    studio.captions.set(images[0], short)
    studio.captions.set(images[1], long)
    report = studio.captions.tokens(style.id)
    assert report.available and report.base_model == "tiny-sd15" and report.limit == 77
    tokenizer = CLIPTokenizer.from_pretrained(
        ensure_tiny_model("sd15", studio.workspace.models_dir), subfolder="tokenizer")
    assert report.counts[images[1]] == len(tokenizer(long)["input_ids"]) > 77
    assert report.counts[images[0]] == len(tokenizer(short)["input_ids"]) <= 77
    assert list(report.over) == [images[1]]
    # The tiny model's tokenizer has no merges: one token per character, and it says so.
    assert report.per_character and "counts each letter as a token" in report.unit_note
    assert report.counts[images[0]] == len(short.replace(" ", "")) + 2  # + start and end

    studio.styles.update(style.id, base_model="stable-diffusion-v1-5/stable-diffusion-v1-5")
    missing = studio.captions.tokens(style.id)
    assert not missing.available and missing.counts == {} and missing.over == {}
    assert "unavailable" in missing.reason


def test_word_statistics(studio, style, images):
    studio.captions.set(images[0], "inkwash, a heron in reeds")
    studio.captions.set(images[1], "inkwash, a heron by a boat")
    studio.captions.set(images[2], "a boat at night")
    stats = studio.captions.stats(style.id)
    assert stats.captions == 3
    counted = {w.word: (w.captions, w.uses) for w in stats.common}
    assert counted["heron"] == (2, 2) and counted["inkwash"] == (2, 2)
    assert "a" not in counted  # stop words are not statistics
    assert stats.without_trigger == [images[2]]
    assert "night" in stats.rare


def test_wording_review_highlights_people_words_and_changes_nothing(studio, style, images):
    words = load_word_list()
    assert {"gender", "ethnicity", "age", "body"} <= {c for cats in words.values()
                                                      for c in cats}
    text = "inkwash, an old woman in black ink beside a Black woman, slender"
    studio.captions.set(images[0], text)
    hits = {h.text: h.categories for h in find_people_words(text, words)}
    assert hits == {"old woman": ("gender", "age"), "Black woman": ("ethnicity",),
                    "slender": ("body",)}
    parts = studio.captions.highlight(text)
    assert "".join(p for p, _ in parts) == text
    assert ("black ink", None) not in parts and any(p == "Black woman" for p, _ in parts)
    review = studio.captions.wording(style.id)
    assert review.counts["body"] == {"slender": 1}
    assert studio.captions.get(images[0]).text == text


# --------------------------------------------------------------------------- sidecars


def test_sidecars_round_trip(studio, style, images, tmp_path):
    twin = add_image(studio, style.id, "heron-0.jpg", (90, 90, 90))  # same stem as #0
    studio.captions.approve(images[0], "inkwash, first heron")
    studio.captions.set(images[1], "inkwash, second heron")
    studio.captions.set(twin, "inkwash, the twin")
    export = studio.captions.sidecars.export(style.id, tmp_path / "out")
    with zipfile.ZipFile(export.path) as archive:
        names = sorted(archive.namelist())
        sha0 = studio.store.get("images", images[0])["sha256"]
        assert f"heron-0-{sha0[:8]}.txt" in names and "heron-1.txt" in names
        assert archive.read("heron-1.txt").decode() == "inkwash, second heron\n"
    assert export.captions == 3 and "heron-2.txt" not in names  # no caption, no file

    studio.captions.set(images[1], "changed meanwhile")
    studio.captions.approve(images[0], "inkwash, approved since")
    folder = tmp_path / "extra"
    folder.mkdir()
    (folder / "heron-2.txt").write_text("[trigger], third heron\n", encoding="utf-8")
    (folder / "nobody.txt").write_text("who am I", encoding="utf-8")
    fourth = add_image(studio, style.id, "heron-3.png", (10, 10, 10))
    (folder / "heron-3.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / "broken.zip").write_bytes(b"PK not really")
    report = studio.captions.sidecars.import_files(
        style.id, [export.path, *sorted(folder.iterdir())])
    assert studio.captions.get(images[1]).text == "inkwash, second heron"
    assert studio.captions.get(images[1]).origin.kind == "imported"
    assert studio.captions.get(images[2]).text == "inkwash, third heron"
    assert studio.captions.get(images[0]).text == "inkwash, approved since"  # kept
    assert report.imported == 2 and report.unchanged == 1
    reasons = dict(report.skipped)
    assert "approved" in reasons[f"heron-0-{sha0[:8]}.txt"]
    assert "no image" in reasons["nobody.txt"] and "UTF-8" in reasons["heron-3.txt"]
    assert studio.captions.get(fourth) is None
    assert "zip" in reasons["broken.zip"]
    studio.captions.edits.undo(style.id)  # an import is one undoable step
    assert studio.captions.get(images[1]).text == "changed meanwhile"
    assert studio.captions.get(images[2]) is None


def test_a_tokenizer_that_reads_words_is_not_called_per_character():
    def word_level(text, add_special_tokens=True, verbose=False):
        return {"input_ids": [7] * len(text.split())}

    def letter_level(text, add_special_tokens=True, verbose=False):
        return {"input_ids": [7] * len(text)}

    assert not _per_character(word_level)
    assert _per_character(letter_level)
    assert TokenReport("real", True, 77, {"a": 9}).unit_note == ""
