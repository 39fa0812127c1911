"""Offline tokenizers for the tiny models, built in code (no download): CLIP, T5, Qwen3.

Why this exists: in transformers 5 `CLIPTokenizer(vocab_file=..., merges_file=...)` silently
ignores the files and maps every token to unk. We pass the vocabulary itself (`vocab=`,
`merges=`), which works, and keep the whole recipe here so the tiny text encoders and
their tokenizers always agree on ids.
"""

from __future__ import annotations

from tokenizers import pre_tokenizers
from transformers import CLIPTextConfig, CLIPTokenizer, Qwen2Tokenizer, T5Tokenizer

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


T5_MAX_LENGTH = 512
METASPACE = "\u2581"


def build_t5_tokenizer(model_max_length: int = T5_MAX_LENGTH) -> T5Tokenizer:
    """A T5 tokenizer from a Unigram vocabulary made in code (sentencepiece is not needed):
    pad=0, eos=1, unk=2 as in T5, then every printable ASCII character alone and after the
    word-start marker, so plain prompts split into known pieces."""
    chars = [chr(code) for code in range(33, 127)]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), (METASPACE, -2.0)]
    vocab += [(char, -3.0) for char in chars] + [(METASPACE + char, -2.5) for char in chars]
    return T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=model_max_length)


# One user turn and the generation prompt, with Qwen3's switch for not thinking: what the
# FLUX.2 klein and Z-Image pipelines render before encoding a prompt.
QWEN_CHAT_TEMPLATE = (
    "{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}")
QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>")


def build_qwen_tokenizer(model_max_length: int = T5_MAX_LENGTH) -> Qwen2Tokenizer:
    """A byte-level Qwen tokenizer (no merges) with Qwen's special tokens and a minimal chat
    template; every text splits into known byte tokens."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate([*alphabet, *QWEN_SPECIALS])}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[], unk_token=None, eos_token="<|im_end|>",
                               pad_token="<|endoftext|>",
                               additional_special_tokens=list(QWEN_SPECIALS[1:]),
                               model_max_length=model_max_length)
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def tiny_clip_text_config(vocab_size: int, projection_dim: int = 32) -> CLIPTextConfig:
    """The tiny models' CLIP text encoder (SD twins and FLUX.1's first encoder)."""
    # bos/eos ids must match tokenizer_assets (bos=0, eos=1): pooling looks for eos.
    return CLIPTextConfig(
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
        hidden_size=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_hidden_layers=5,
        max_position_embeddings=77,
        vocab_size=vocab_size,
        projection_dim=projection_dim,
    )
