"""How the captions are worded: word statistics, token counts, and the wording review.

Why: the words in the captions decide what the LoRA learns. Statistics show what the
set keeps repeating; the token check counts with the base model's own tokenizer, since
words past its text-encoder limit are silently cut off in training; the review marks
words about people (gender, ethnicity, age, body) from an editable list in `assets/`
so the artist chooses them consciously. Nothing here ever changes a caption.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import try_to_load_from_cache
from transformers import AutoTokenizer

from style_studio.base.family import is_toy
from style_studio.models.families import ensure_twin, family_spec
from style_studio.models.families.spec import TokenReader
from style_studio.models.loading import KNOWN_HUB_MODELS
from style_studio.models.tiny import parse_tiny_id, tiny_id
from style_studio.models.toy import ensure_toy_model

PEOPLE_WORDS = Path(__file__).resolve().parents[2] / "assets" / "wording" / "people_words.txt"
_STOP_TEXT = """a an the of and or with in on at by to from for is are its it this that as
into onto over under near"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[\w][\w'-]*")
_SANE_LIMIT = 10_000
_MIN_VOCAB = 100
_VOCABS = ("vocab.json", "tokenizer.json", "spiece.model")  # CLIP/Qwen, fast, T5


# --------------------------------------------------------------------------- statistics


@dataclass
class WordCount:
    word: str
    captions: int  # how many captions use it
    uses: int  # how often in all


@dataclass
class WordStats:
    captions: int
    words: int
    unique: int
    average_words: float
    common: list[WordCount]
    rare: list[str]  # in one caption only: worth a look for consistency
    without_trigger: list[str] = field(default_factory=list)  # image ids


def words_of(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def word_stats(texts: dict[str, str], trigger: str = "", top: int = 40) -> WordStats:
    """Word frequencies over the non-empty captions `texts` (image id -> text)."""
    texts = {k: v for k, v in texts.items() if v.strip()}
    uses: Counter[str] = Counter()
    captions: Counter[str] = Counter()
    for text in texts.values():
        words = words_of(text)
        uses.update(words)
        captions.update(set(words))
    content = [w for w in captions if w not in STOP_WORDS]
    content.sort(key=lambda w: (-captions[w], -uses[w], w))
    total = sum(uses.values())
    trig = trigger.lower()
    return WordStats(
        captions=len(texts), words=total, unique=len(uses),
        average_words=round(total / len(texts), 1) if texts else 0.0,
        common=[WordCount(w, captions[w], uses[w]) for w in content[:top]],
        rare=sorted(w for w in content if captions[w] == 1),
        without_trigger=sorted(k for k, v in texts.items()
                               if trig and trig not in words_of(v)),
    )


# --------------------------------------------------------------------------- wording review


@dataclass
class WordingHit:
    start: int
    end: int
    text: str
    categories: tuple[str, ...]

    @property
    def label(self) -> str:
        return " · ".join(self.categories)


def load_word_list(path: Path = PEOPLE_WORDS) -> dict[str, tuple[str, ...]]:
    """Phrase -> categories, from `[category]` sections of one phrase per line."""
    found: dict[str, list[str]] = {}
    category = "people"
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip().lower()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            category = line[1:-1].strip()
            continue
        phrase = " ".join(line.split())
        if category not in found.setdefault(phrase, []):
            found[phrase].append(category)
    return {phrase: tuple(cats) for phrase, cats in found.items()}


def _review_pattern(words: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    # Longest first, so "old woman" wins over "woman"; whole words only.
    phrases = sorted(words, key=len, reverse=True)
    body = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in phrases)
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


def find_people_words(text: str, words: dict[str, tuple[str, ...]]) -> list[WordingHit]:
    if not words:
        return []
    return [WordingHit(m.start(), m.end(), m.group(0),
                       words[" ".join(m.group(0).lower().split())])
            for m in _review_pattern(words).finditer(text)]


def highlight(text: str, hits: list[WordingHit]) -> list[tuple[str, str | None]]:
    """(segment, label or None) pairs, the shape a highlighted-text view shows."""
    parts: list[tuple[str, str | None]] = []
    at = 0
    for hit in hits:
        if hit.start > at:
            parts.append((text[at:hit.start], None))
        parts.append((hit.text, hit.label))
        at = hit.end
    if at < len(text):
        parts.append((text[at:], None))
    return parts


@dataclass
class WordingReview:
    """Which people-words the captions use: per caption, and counted per category."""

    hits: dict[str, list[WordingHit]]  # image id -> hits (only captions with hits)
    counts: dict[str, dict[str, int]]  # category -> word -> captions using it


def review(texts: dict[str, str], words: dict[str, tuple[str, ...]]) -> WordingReview:
    hits: dict[str, list[WordingHit]] = {}
    counts: dict[str, Counter[str]] = {}
    for image_id, text in texts.items():
        found = find_people_words(text, words)
        if not found:
            continue
        hits[image_id] = found
        for phrase in {(" ".join(h.text.lower().split()), h.categories) for h in found}:
            for category in phrase[1]:
                counts.setdefault(category, Counter())[phrase[0]] += 1
    return WordingReview(hits, {c: dict(n.most_common()) for c, n in sorted(counts.items())})


# --------------------------------------------------------------------------- token limit


@dataclass
class TokenReport:
    """Token counts of captions with the base model's own tokenizer.

    `available` is False (with `reason`) when that tokenizer is not on this machine:
    the count is then unknown rather than guessed. `encoder` names the text encoder whose
    limit cuts a caption short (CLIP for SD, T5 for FLUX.1, Qwen3 for FLUX.2 [klein] and
    Z-Image). FLUX.1 also reads a caption with CLIP, but only its first `pooled_limit`
    tokens, for one overall vector: a longer caption is not cut from training there, so
    `pooled_counts` is information, never a warning.
    """

    base_model: str
    available: bool
    limit: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    per_character: bool = False  # the tiny and toy models: one token per letter
    encoder: str = "CLIP"
    chat_template: bool = False  # the pipeline wraps each caption in a chat template
    pooled_encoder: str = ""
    pooled_limit: int | None = None
    pooled_counts: dict[str, int] = field(default_factory=dict)

    @property
    def unit_note(self) -> str:
        """Why a short caption can count many tokens: said wherever a count is shown."""
        if not self.per_character:
            return ""
        return "this base model's tokenizer counts each letter as a token"

    @property
    def over(self) -> dict[str, int]:
        """Captions past the limit (image id -> token count)."""
        if self.limit is None:
            return {}
        return {k: n for k, n in self.counts.items() if n > self.limit}

    @property
    def past_pooled(self) -> dict[str, int]:
        """Captions longer than the pooled encoder reads (image id -> its token count)."""
        if self.pooled_limit is None:
            return {}
        return {k: n for k, n in self.pooled_counts.items() if n > self.pooled_limit}


def _cached_snapshot(repo_id: str, subfolder: str = "tokenizer") -> Path | None:
    """The local snapshot holding `repo_id`'s tokenizer, found without the network."""
    for name in _VOCABS:
        try:
            cached = try_to_load_from_cache(repo_id, f"{subfolder}/{name}")
        except ValueError:  # not a valid repo id
            return None
        if isinstance(cached, str):
            return Path(cached).parent.parent
    return None


def _per_character(tokenizer: Any) -> bool:
    """A tokenizer without merges (the tiny and toy models) gives a word one token per
    letter; a real tokenizer reads a common word as one token or a few."""
    probe = "landscape"
    ids = tokenizer(probe, add_special_tokens=False, verbose=False)["input_ids"]
    return len(ids) >= len(probe)


def count_tokens(tokenizer: Any, text: str, reader: TokenReader) -> int:
    """Tokens of `text` as the pipeline feeds them to the encoder: special tokens
    included and, for the Qwen3 families, inside the chat template the pipeline renders."""
    if reader.chat_thinking is not None:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True,
            enable_thinking=reader.chat_thinking)
    return len(tokenizer(text, verbose=False)["input_ids"])


class BaseTokenizers:
    """Loads (once) just the tokenizers of a base model, never the whole pipeline."""

    def __init__(self, models_dir: Path):
        self.models_dir = Path(models_dir)
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], Any] = {}

    def get(self, ref: str, family: str = "sd15", subfolder: str = "tokenizer") -> Any:
        """The tokenizer in `subfolder` of `ref`; raises OSError/ValueError when it is not
        here."""
        with self._lock:
            if (ref, subfolder) not in self._cache:
                self._cache[(ref, subfolder)] = self._load(ref, family, subfolder)
            return self._cache[(ref, subfolder)]

    def _load(self, ref: str, family: str, subfolder: str) -> Any:
        tiny = parse_tiny_id(ref)
        path = Path(ref).expanduser()
        if not path.exists() and (self.models_dir / ref).exists():
            path = self.models_dir / ref
        if tiny:
            folder: Path | None = ensure_twin(tiny[0], self.models_dir, tiny[1])
        elif is_toy(ref):  # shipped with the app: copied in on first use, like the tiny one
            folder = ensure_toy_model(self.models_dir, toy_id=ref)
        elif path.is_dir():
            folder = path
        else:  # a hub id; a single-file checkpoint uses its family's hub tokenizer
            if path.is_file():
                ref = next(r for r, known in KNOWN_HUB_MODELS.items() if known[0] == family)
            folder = _cached_snapshot(ref, subfolder)
        # transformers 5 quietly builds an empty tokenizer when the files are missing:
        # check for them, and for a real vocabulary, rather than count with nothing.
        if folder is None or not any((folder / subfolder / n).is_file() for n in _VOCABS):
            raise OSError(f"no tokenizer files for {ref}")
        tokenizer = AutoTokenizer.from_pretrained(folder, subfolder=subfolder)
        if len(tokenizer) < _MIN_VOCAB:
            raise ValueError(f"the tokenizer of {ref} has no vocabulary")
        return tokenizer

    def count(self, ref: str | None, family: str, texts: dict[str, str]) -> TokenReport:
        """Token counts per caption with the family's encoder that cuts captions short
        (and, for FLUX.1, with the CLIP encoder that reads only their start)."""
        ref = ref or tiny_id(family)  # type: ignore[arg-type]
        readers = family_spec(family).token_readers
        main = next(r for r in readers if not r.pooled)
        pooled = next((r for r in readers if r.pooled), None)
        try:
            tokenizers = {r.subfolder: self.get(ref, family, r.subfolder) for r in readers}
        except (OSError, ValueError, StopIteration) as exc:
            return TokenReport(ref, False, encoder=main.encoder, reason=(
                f"The {main.encoder} tokenizer of {ref} is not on this machine, so token "
                f"counts are unavailable ({type(exc).__name__}). Download the base model "
                "to see them."))
        texts = {k: v for k, v in texts.items() if v.strip()}
        tokenizer = tokenizers[main.subfolder]
        report = TokenReport(ref, True, main.limit,
                             {k: count_tokens(tokenizer, v, main) for k, v in texts.items()},
                             per_character=_per_character(tokenizer), encoder=main.encoder,
                             chat_template=main.chat_thinking is not None)
        if pooled is not None:
            report.pooled_encoder, report.pooled_limit = pooled.encoder, pooled.limit
            report.pooled_counts = {k: count_tokens(tokenizers[pooled.subfolder], v, pooled)
                                    for k, v in texts.items()}
        return report
