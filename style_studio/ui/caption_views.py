"""What the Captions tab shows, computed from `studio.captions` (no components here).

Kept apart from the layout so the tab module is only wiring; every value here is plain
text, tables and (segment, label) pairs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from style_studio.studio import CaptionRow, Job, Studio, TokenReport

from .common import escape_md, job_state_markdown

STATUS_LABELS = {"approved": "✓ approved", "draft": "✎ draft", "missing": "○ no caption"}
TABLE_HEADERS = ["#", "File", "Status", "Caption", "Tokens", "Origin"]
PEOPLE_COLORS = {"gender": "#f4a261", "ethnicity": "#e76f51", "age": "#2a9d8f",
                 "body": "#8e7dbe"}
# Installed the first time the artist types a caption: leaving or reloading the page while
# the editor holds words that were never saved asks first (the browser's own dialog).
WARN_BEFORE_LEAVING_UNSAVED = """() => {
  if (!window.styleStudioCaptionGuard) {
    window.styleStudioCaptionGuard = true;
    window.addEventListener("beforeunload", (event) => {
      const box = document.querySelector("#captions-text textarea");
      const saved = document.querySelector(
        "#captions-loaded textarea, #captions-loaded input");
      if (box && saved && box.value !== saved.value) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }
  return [];
}"""


@dataclass
class Overview:
    """Everything about the style's captions that the tab shows at once."""

    rows: list[CaptionRow]
    tokens: TokenReport

    @property
    def ids(self) -> list[str]:
        return [r.image_id for r in self.rows]

    def row(self, image_id: str | None) -> CaptionRow | None:
        return next((r for r in self.rows if r.image_id == image_id), None)

    def summary(self) -> str:
        if not self.rows:
            return ("No images in this style yet: add some in the **Images** tab, then "
                    "caption them here.")
        count = {k: sum(r.status == k for r in self.rows) for k in STATUS_LABELS}
        over = len(self.tokens.over)
        plural = "s" if len(self.rows) != 1 else ""
        text = (f"**{len(self.rows)} image{plural}** · {count['approved']} approved · "
                f"{count['draft']} draft · {count['missing']} without a caption. "
                "Only approved captions are trained on.")
        if over:
            text += f" ⚠ {over} caption(s) are past the {self.tokens.limit}-token limit."
        return text

    def choices(self) -> list[tuple[str, str]]:
        return [(f"{i + 1}. {r.filename} — {STATUS_LABELS[r.status]}", r.image_id)
                for i, r in enumerate(self.rows)]

    def table(self) -> list[list[Any]]:
        out = []
        for i, r in enumerate(self.rows):
            count = self.tokens.counts.get(r.image_id)
            tokens = "" if count is None else (
                f"⚠ {count}" if r.image_id in self.tokens.over else str(count))
            out.append([i + 1, r.filename, STATUS_LABELS[r.status], r.text, tokens, r.origin])
        return out

    def tokens_markdown(self) -> str:
        report = self.tokens
        if not report.available:
            return f"Token counts: {escape_md(report.reason)}"
        wrapped = (", and the chat template the pipeline wraps around each caption"
                   if report.chat_template else "")
        text = (f"Token counts use the {report.encoder} tokenizer of "
                f"**{escape_md(report.base_model)}** (limit {report.limit} tokens, start and "
                f"end included{wrapped}; words past it are cut off in training).")
        if report.unit_note:
            text += (f" Note: {report.unit_note} (and each punctuation mark); a real base "
                     "model counts whole words and word pieces, so the same caption is far "
                     "shorter there.")
        text += pooled_note(report)
        if not report.over:
            return text + " Every caption fits."
        names = {r.image_id: r.filename for r in self.rows}
        lines = [f"- {escape_md(names.get(k, k))}: **{n}** tokens" for k, n in report.over.items()]
        return text + "\n\n**Past the limit:**\n" + "\n".join(lines)


def pooled_note(report: TokenReport) -> str:
    """FLUX.1's second reading of a caption: CLIP sees only its start, for the overall
    vector. Nothing is lost from training past it, so it is a note, not a warning."""
    if report.pooled_limit is None:
        return ""
    longer = len(report.past_pooled)
    which = (f" {longer} caption(s) are longer than that: only their start shapes that "
             "vector." if longer else "")
    return (f" The {report.pooled_encoder} encoder also reads the first "
            f"{report.pooled_limit} tokens, for one overall (pooled) vector.{which}")


def load_overview(studio: Studio, style_id: str) -> Overview:
    rows = studio.captions.rows(style_id)
    return Overview(rows, studio.captions.tokens(style_id))


def pick(overview: Overview, current: str | None, step: int = 0) -> str | None:
    """The image to edit: the current one moved by `step`, else the first."""
    ids = overview.ids
    if not ids:
        return None
    if current not in ids:
        return ids[0]
    return ids[max(0, min(len(ids) - 1, ids.index(current) + step))]


def editor_status(overview: Overview, row: CaptionRow | None, trigger: str) -> str:
    if row is None:
        return "Choose an image."
    parts = [f"**{STATUS_LABELS[row.status]}**", escape_md(row.filename)]
    if row.origin:
        parts.append(escape_md(row.origin))
    count = overview.tokens.counts.get(row.image_id)
    if count is not None:
        parts.append(_count_text(count, overview.tokens))
    text = " · ".join(parts)
    if row.image_id in overview.tokens.over:
        text += "\n\n⚠ Past the token limit: the end of this caption is cut off in training."
    if row.text and trigger and trigger.lower() not in row.text.lower():
        text += f"\n\nThis caption does not contain the trigger word **{escape_md(trigger)}**."
    return text


def live_tokens(report: TokenReport) -> str:
    """One line under the caption box while typing."""
    if not report.available or "typed" not in report.counts:
        return ""
    count = report.counts["typed"]
    if report.over:
        return (f"⚠ {_count_text(count, report)}: the end of this caption is cut off in "
                "training.")
    return _count_text(count, report)


def _count_text(count: int, report: TokenReport) -> str:
    """"70 of 77 tokens", and why so many when the tokenizer counts characters."""
    text = f"{count} of {report.limit} tokens"
    return f"{text} ({report.unit_note})" if report.unit_note else text


def stats_markdown(studio: Studio, style_id: str) -> tuple[str, list[list[Any]]]:
    stats = studio.captions.stats(style_id)
    if not stats.captions:
        return "No captions yet.", []
    text = (f"{stats.captions} captions · {stats.words} words ({stats.unique} different) · "
            f"{stats.average_words} words per caption on average.")
    if stats.without_trigger:
        text += f" {len(stats.without_trigger)} caption(s) lack the trigger word."
    if stats.rare:
        text += ("\n\nUsed in one caption only (check they are consistent): "
                 + ", ".join(escape_md(w) for w in stats.rare[:40]))
    return text, [[w.word, w.captions, w.uses] for w in stats.common]


def review_view(studio: Studio, style_id: str,
                overview: Overview) -> tuple[str, list[tuple[str, str | None]]]:
    """A summary of people-words per category, and every caption using them highlighted."""
    found = studio.captions.wording(style_id)
    if not found.hits:
        return "No words about gender, ethnicity, age or body in the captions.", []
    lines = [f"- **{escape_md(category)}**: "
             + ", ".join(f"{escape_md(w)} ({n})" for w, n in words.items())
             for category, words in found.counts.items()]
    text = ("Words about people are highlighted so you choose them consciously: they teach "
            "the model who belongs to your style. Nothing is changed for you.\n\n"
            + "\n".join(lines))
    segments: list[tuple[str, str | None]] = []
    for row in overview.rows:
        if row.image_id in found.hits:
            segments.append((f"{row.filename}: ", None))
            segments += studio.captions.highlight(row.text)
            segments.append(("\n", None))
    return text, segments


def job_markdown(job: Job | None) -> str:
    if job is None:
        return ""
    state = job_state_markdown(job, "Auto-captioning", "the device",
                               "Auto-captioning failed")
    if state:
        return state
    result = job.result or {}
    failures = result.get("failures") or job.extra.get("failures") or []
    if job.status == "cancelled":
        text = f"Auto-captioning was cancelled after {job.extra.get('done', 0)} image(s)."
    else:
        text = (f"**Auto-captioned {result.get('captioned', 0)} image(s)** with "
                f"{escape_md(result.get('model', ''))} as drafts: read, edit and approve each one.")
        if result.get("message"):
            text = escape_md(result["message"])
    skipped = result.get("skipped") or []
    if skipped:
        text += f" {len(skipped)} kept as they were (already captioned or approved)."
    if failures:
        text += "\n\n**Could not caption:**\n" + "\n".join(
            f"- {escape_md(f['filename'])}: {escape_md(f['reason'])}" for f in failures)
    return text


def chosen_model(picked: str | None, typed: str) -> str:
    """A model typed in the box wins over the one picked in the list."""
    return (typed or "").strip() or (picked or "")


def captioner_choices(studio: Studio) -> list[tuple[str, str]]:
    return [(s.label + ("" if s.available else " — not downloaded"), s.ref)
            for s in studio.captions.list_captioners()]
