"""Tiny captioning models with random weights, built from config in code (no download).

Why: tests and the offline demo need a captioner that runs anywhere in a fraction of a
second. Each tiny model is saved to a folder with its processor and then loaded through
the very same `from_pretrained` code path as a downloaded BLIP or Florence-2, so the
whole workflow is exercised honestly; only the weights are random, which the label says.

Tokenizer pitfall (transformers 5): `BertTokenizer(vocab_file=...)` and
`BartTokenizer(vocab_file=..., merges_file=...)` silently ignore the files; we pass the
vocabulary itself (`vocab=`, `merges=`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from transformers import (
    BartTokenizer,
    BertTokenizer,
    BlipConfig,
    BlipForConditionalGeneration,
    BlipImageProcessor,
    BlipProcessor,
    CLIPImageProcessor,
    Florence2Config,
    Florence2ForConditionalGeneration,
    Florence2Processor,
)

from style_studio.base.files import atomic_write_json

TINY_BLIP = "tiny-blip"
TINY_FLORENCE2 = "tiny-florence2"
TINY_CAPTIONER_LABELS: dict[str, str] = {
    TINY_BLIP: "Tiny random captioner (random weights, for trying the workflow)",
    TINY_FLORENCE2: "Tiny random Florence-2 (random weights, for tests)",
}
TINY_MARKER = "STYLE_STUDIO_CAPTIONER.json"
IMAGE_SIZE = 32

# Words the tiny models can "say": captions from random weights are random words, but
# real words make the workflow (editing, statistics, wording review) look like real use.
_WORD_TEXT = """
a an the of with and in on at by under over near behind beside
painting drawing sketch study watercolour ink wash charcoal pencil print photo collage
heron bird crane fish cat dog horse deer fox boat bridge house tower temple
tree trees reeds grass flower flowers leaf leaves branch forest garden field
river lake sea wave waves rain snow cloud clouds sky moon sun mist fog
mountain mountains hill rock stone road path city street window door
red blue green yellow black white grey brown orange purple pale dark
light shadow soft bold loose thin thick wet dry quiet calm
woman man child girl boy person people figure face hands young old
small large tall long round empty full still morning evening night
"""
WORDS: tuple[str, ...] = tuple(_WORD_TEXT.split())


def _blip_tokenizer() -> BertTokenizer:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]
    vocab = {token: index for index, token in enumerate([*specials, *WORDS])}
    # The real BLIP tokenizer is a BERT WordPiece with "[DEC]" as its bos token.
    return BertTokenizer(vocab=vocab, bos_token="[DEC]", do_lower_case=True,
                         model_max_length=512)


def build_tiny_blip(folder: Path, seed: int = 0) -> None:
    """Save a ~50 k-parameter BlipForConditionalGeneration plus its BlipProcessor."""
    tokenizer = _blip_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    processor = BlipProcessor(
        image_processor=BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
    )
    config = BlipConfig(
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2,
                       "num_attention_heads": 4, "image_size": IMAGE_SIZE, "patch_size": 8,
                       "initializer_range": 0.02},
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32,
                     "intermediate_size": 37, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "encoder_hidden_size": 32,
                     "max_position_embeddings": 128, "pad_token_id": ids("[PAD]"),
                     "bos_token_id": ids("[DEC]"), "sep_token_id": ids("[SEP]"),
                     "eos_token_id": ids("[SEP]"), "initializer_range": 0.2},
        projection_dim=32,
    )
    # BLIP's default vision init (1e-10) and small text init make random weights ignore
    # the image; these give captions that at least differ from image to image.
    torch.manual_seed(seed)
    BlipForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def _bart_tokenizer() -> BartTokenizer:
    """Byte-level BPE whose merges spell out each word of WORDS, like a real BART vocab."""
    vocab: dict[str, int] = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab.setdefault(char, len(vocab))
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        spelled = "Ġ" + word  # "Ġ" marks a leading space in byte-level BPE
        piece = spelled[0]
        for char in spelled[1:]:
            if piece + char not in vocab:
                merges.append((piece, char))
                vocab[piece + char] = len(vocab)
            piece += char
    vocab["<mask>"] = len(vocab)
    return BartTokenizer(vocab=vocab, merges=merges, model_max_length=1024,
                         extra_special_tokens={"image_token": "<image>"})


def build_tiny_florence2(folder: Path, seed: int = 0) -> None:
    """Save a tiny Florence2ForConditionalGeneration (DaViT + BART) plus its processor."""
    tokenizer = _bart_tokenizer()
    # Four stages of stride 4,2,2,2 turn 64 px into 2x2 features: 4 + 1 pooled = 5 tokens.
    image_processor = CLIPImageProcessor(
        size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64},
        do_center_crop=False, image_seq_length=5,
    )
    processor = Florence2Processor(image_processor=image_processor, tokenizer=tokenizer)
    config = Florence2Config(
        vision_config={"depths": (1, 1, 1, 1), "embed_dim": (8, 16, 32, 32),
                       "num_heads": (1, 1, 2, 2), "num_groups": (1, 1, 2, 2),
                       "window_size": 2, "projection_dim": 32,
                       "max_position_embeddings": 8, "drop_path_rate": 0.0},
        text_config={"vocab_size": len(tokenizer), "d_model": 32, "encoder_layers": 1,
                     "decoder_layers": 1, "encoder_attention_heads": 2,
                     "decoder_attention_heads": 2, "encoder_ffn_dim": 37,
                     "decoder_ffn_dim": 37, "max_position_embeddings": 128,
                     "bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2,
                     "decoder_start_token_id": 2, "forced_bos_token_id": 0},
        image_token_id=tokenizer.image_token_id,
    )
    torch.manual_seed(seed)
    Florence2ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


BUILDERS: dict[str, Callable[[Path, int], None]] = {
    TINY_BLIP: build_tiny_blip,
    TINY_FLORENCE2: build_tiny_florence2,
}


def is_tiny_captioner(ref: str) -> bool:
    return ref.strip() in BUILDERS


def ensure_tiny_captioner(ref: str, captioners_dir: Path) -> Path:
    """Save the tiny captioner `ref` under `captioners_dir` once; return its folder.

    Written to a hidden temp folder and renamed into place, so a crash never leaves a
    half-written model that looks complete.
    """
    ref = ref.strip()
    folder = Path(captioners_dir) / ref
    if (folder / TINY_MARKER).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{ref}.", suffix=".tmp", dir=folder.parent))
    try:
        BUILDERS[ref](tmp, 0)
        atomic_write_json(tmp / TINY_MARKER, {"kind": "tiny-random", "ref": ref,
                                              "note": TINY_CAPTIONER_LABELS[ref]})
        try:
            os.rename(tmp, folder)
        except OSError:
            if not (folder / TINY_MARKER).is_file():
                raise  # not a lost race with another caller: a real failure
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder
