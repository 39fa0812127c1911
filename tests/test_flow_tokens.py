"""Caption token limits per family: FLUX.1 counts with its T5 tokenizer (512) and notes its
CLIP reading (77, for the pooled vector only); FLUX.2 [klein] and Z-Image count with Qwen3
inside the chat template their pipelines render; a real model's tokenizers come from the
local Hugging Face cache, or the report says plainly they are not on this machine."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
from transformers import AutoTokenizer

from style_studio.captions.wording import BaseTokenizers, TokenReport
from style_studio.models.families import ensure_twin
from style_studio.models.tokenizer_assets import (
    build_clip_tokenizer,
    build_qwen_tokenizer,
    build_t5_tokenizer,
)
from style_studio.ui.caption_views import Overview, pooled_note

SHORT = "inkwash, a heron"
LONG = "inkwash, " + "grey heron in reeds " * 5  # past 77 letter-tokens, under 512


def _chat(tokenizer, text: str, thinking: bool) -> int:
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}],
                                             tokenize=False, add_generation_prompt=True,
                                             enable_thinking=thinking)
    return len(tokenizer(rendered)["input_ids"])


def test_flux1_counts_with_t5_up_to_512_and_notes_the_77_clip_tokens(studio):
    style = studio.styles.create("Flux", trigger="inkwash", family="flux1")
    report = studio.captions.tokens(style.id, {"short": SHORT, "long": LONG})
    folder = ensure_twin("flux1", studio.workspace.models_dir)
    t5 = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer_2")
    clip = AutoTokenizer.from_pretrained(folder, subfolder="tokenizer")
    assert report.available and (report.encoder, report.limit) == ("T5", 512)
    assert report.counts == {k: len(t5(v)["input_ids"]) for k, v in
                             (("short", SHORT), ("long", LONG))}
    assert report.over == {}  # nothing is cut off: T5 reads all of it
    assert (report.pooled_encoder, report.pooled_limit) == ("CLIP", 77)
    assert report.pooled_counts["long"] == len(clip(LONG)["input_ids"]) > 77
    assert list(report.past_pooled) == ["long"]
    note = pooled_note(report)
    assert "CLIP encoder also reads the first 77 tokens" in note and "1 caption(s)" in note
    text = Overview([], report).tokens_markdown()
    assert "T5 tokenizer of **tiny-flux1** (limit 512 tokens" in text
    assert "Every caption fits" in text


def test_qwen_families_count_the_chat_template_their_pipelines_render(studio):
    for family, thinking in (("flux2_klein", False), ("zimage", True)):
        style = studio.styles.create(f"Qwen {family}", family=family)
        report = studio.captions.tokens(style.id, {"a": SHORT})
        tokenizer = AutoTokenizer.from_pretrained(
            ensure_twin(family, studio.workspace.models_dir), subfolder="tokenizer")
        assert (report.encoder, report.limit, report.pooled_limit) == ("Qwen3", 512, None)
        assert report.counts["a"] == _chat(tokenizer, SHORT, thinking)
        assert report.counts["a"] > len(tokenizer(SHORT)["input_ids"])
        assert report.chat_template and report.per_character
        assert "chat template" in Overview([], report).tokens_markdown()


def _cache_snapshot(repo_id: str, parts: dict[str, object]) -> Path:
    """A snapshot in this test's empty Hugging Face cache, laid out as `hf download` does."""
    repo = Path(huggingface_hub.constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    for subfolder, tokenizer in parts.items():
        tokenizer.save_pretrained(snapshot / subfolder)
    return snapshot


def test_a_real_models_tokenizers_come_from_the_local_cache_or_fail_soft(tmp_path):
    counter = BaseTokenizers(tmp_path / "models")
    repo = "black-forest-labs/FLUX.1-dev"
    missing = counter.count(repo, "flux1", {"a": SHORT})
    assert not missing.available and missing.counts == {} and missing.over == {}
    assert "T5 tokenizer of black-forest-labs/FLUX.1-dev is not on this machine" in (
        missing.reason)
    assert Overview([], missing).tokens_markdown().startswith("Token counts: The T5")

    _cache_snapshot(repo, {"tokenizer": build_clip_tokenizer()})
    half = BaseTokenizers(tmp_path / "models").count(repo, "flux1", {"a": SHORT})
    assert not half.available  # CLIP alone is not enough: T5 decides what is cut off

    _cache_snapshot(repo, {"tokenizer_2": build_t5_tokenizer()})
    found = BaseTokenizers(tmp_path / "models").count(repo, "flux1", {"a": SHORT})
    assert found.available and found.limit == 512 and found.pooled_limit == 77

    _cache_snapshot("Tongyi-MAI/Z-Image-Turbo", {"tokenizer": build_qwen_tokenizer()})
    qwen = BaseTokenizers(tmp_path / "models").count("Tongyi-MAI/Z-Image-Turbo", "zimage",
                                                     {"a": SHORT})
    assert qwen.available and qwen.encoder == "Qwen3" and qwen.counts["a"] > len(SHORT)


def test_sd_keeps_its_clip_limit_and_has_no_pooled_note(studio):
    style = studio.styles.create("SD", family="sd15")
    report = studio.captions.tokens(style.id, {"a": SHORT})
    assert (report.encoder, report.limit, report.pooled_limit) == ("CLIP", 77, None)
    assert pooled_note(report) == "" and report.past_pooled == {}
    assert TokenReport("x", True, 512, {"a": 600}, encoder="T5").over == {"a": 600}
