"""Offline CLIP tokenizers for the tiny models, built in code (no download).

Why this exists: in transformers 5 `CLIPTokenizer(vocab_file=..., merges_file=...)` silently
ignores the files and maps every token to unk. We pass the vocabulary itself (`vocab=`,
`merges=`), which works, and keep the whole recipe here so the tiny text encoders and
their tokenizers always agree on ids.
"""

from __future__ import annotations

from tokenizers import pre_tokenizers
from transformers import CLIPTokenizer

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
CLIP_MAX_LENGTH = 77


def byte_level_clip_vocab() -> dict[str, int]:
    """Special tokens first (bos=0, eos=1), then the 256 byte-level characters, then their
    end-of-word forms: every text splits into known tokens, so nothing becomes unk."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [BOS_TOKEN, EOS_TOKEN, *alphabet, *(char + END_OF_WORD for char in alphabet)]
    return {token: index for index, token in enumerate(tokens)}


def build_clip_tokenizer(model_max_length: int = CLIP_MAX_LENGTH) -> CLIPTokenizer:
    """A character-level CLIP tokenizer (no merges) with the real CLIP special tokens."""
    return CLIPTokenizer(
        vocab=byte_level_clip_vocab(),
        merges=[],
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        model_max_length=model_max_length,
    )
