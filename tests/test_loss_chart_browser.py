"""The live loss chart draws from its first points (issue 13, item 5).

A live first run used to send the LinePlot an empty, untyped frame before its first
metrics row. Gradio's LinePlot builds its Vega-Lite spec (axis types, colour domain) from
the first value it gets and afterwards only swaps the data, so the chart kept nominal axes
for good: one overlapping y label per loss value, one x category per step, no line. Here a
short run is started from the page and, while it runs, the chart is checked twice: the
values the LinePlot is given are typed (numeric step and loss), and the SVG the browser
drew has linear axes with a handful of numeric labels and a stroked line.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest
from playwright.sync_api import expect
from training_helpers import trainable_workspace

from browser import ARTIFACTS, fill_number, screenshot
from style_studio.ui.training_views import loss_frame

pytestmark = pytest.mark.browser

# What vega's SVG renderer (Gradio's LinePlot embeds Vega-Lite with renderer "svg") drew
# inside #train-loss: each axis's accessible description ("X-axis titled 'step' for a linear
# scale ..." or "... for a discrete scale with 36 values ..."), its visible tick labels
# (vega hides overlapping ones with opacity 0), and each line mark's path and stroke.
CHART_JS = """(root) => {
  const svg = root.querySelector('svg.marks');
  if (!svg) return null;
  const axes = [...svg.querySelectorAll('g.role-axis')].map(g => ({
    aria: g.getAttribute('aria-label') || '',
    labels: [...g.querySelectorAll('g.role-axis-label text')]
      .filter(t => t.getAttribute('opacity') !== '0').map(t => t.textContent)}));
  const lines = [...svg.querySelectorAll('g.mark-line path')].map(p => ({
    d: p.getAttribute('d') || '', stroke: p.getAttribute('stroke') || ''}));
  return {axes, lines};
}"""
# Resolves once a line with at least two points is drawn (a path with an "L" segment).
LINE_DRAWN_JS = """() => [...document.querySelectorAll('#train-loss svg.marks g.mark-line path')]
  .some(p => /L/.test(p.getAttribute('d') || ''))"""
NUMBER = re.compile(r"^[\u2212-]?\d[\d,]*(\.\d+)?(e[\u2212-]?\d+)?$")


@pytest.fixture
def app_workspace(tmp_path):
    """A style with four cleared, captioned images, made before the app starts."""
    return trainable_workspace(tmp_path, "Loss chart shapes")


def metrics_rows(workspace: Path) -> list[dict]:
    """The running run's metrics rows, read from its folder (the app holds the store)."""
    files = list(workspace.glob("styles/*/runs/*/metrics.jsonl"))
    assert len(files) == 1, files
    lines = files[0].read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def assert_typed(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == ["step", "loss", "series"]
    assert pd.api.types.is_integer_dtype(frame["step"]), frame.dtypes
    assert pd.api.types.is_float_dtype(frame["loss"]), frame.dtypes
    # What gr.LinePlot sends the browser: the axis types its Vega-Lite spec is built from.
    plot = gr.LinePlot(x="step", y="loss", color="series")
    datatypes = plot.postprocess(frame).datatypes
    assert datatypes == {"step": "quantitative", "loss": "quantitative",
                         "series": "nominal"}, datatypes


def number(label: str) -> float:
    assert NUMBER.match(label), f"not a number: {label!r}"
    return float(label.replace(",", "").replace("\u2212", "-"))


def assert_numeric_axes(chart: dict) -> None:
    """Both axes linear, with evenly spaced numeric ticks; the y axis (260 px high) has a
    handful of labels. A nominal axis, the old bug, is a "discrete scale" with one label per
    step on x and one per loss value on y, piled on top of each other."""
    axes = {axis["aria"].split("-axis")[0]: axis for axis in chart["axes"]
            if "-axis" in axis["aria"]}
    assert set(axes) >= {"X", "Y"}, chart["axes"]
    for name, most in (("X", 60), ("Y", 12)):
        aria, labels = axes[name]["aria"], axes[name]["labels"]
        assert "linear scale" in aria, f"{name} axis is not numeric: {aria}"
        assert 2 <= len(labels) <= most, f"{name} axis labels: {labels}"
        ticks = sorted({number(label) for label in labels})
        assert len(ticks) == len(labels), f"{name} axis labels repeat: {labels}"
        gaps = [b - a for a, b in pairwise(ticks)]
        assert max(gaps) - min(gaps) <= 1e-6 * max(gaps), f"{name} axis ticks: {labels}"


def assert_line_drawn(chart: dict) -> None:
    """A stroked path through two points or more (the old chart's paths had no stroke:
    its colour scale was built from the empty first frame, with no series in it)."""
    drawn = [line for line in chart["lines"]
             if "L" in line["d"] and line["stroke"] not in ("", "none", "transparent")]
    assert drawn, f"no stroked line with two points or more: {chart['lines']}"


def test_live_loss_chart_has_numeric_axes_and_a_line(app_url, page):
    # Before any run: what the tab sends once a run has no metrics yet is typed too
    # (the tab sends no frame at all then; an empty frame must still be numeric).
    assert_typed(loss_frame([]))

    page.goto(str(app_url))
    page.get_by_role("tab", name="Training").click()
    expect(page.locator("#train-dataset")).to_contain_text("4 image(s) will be trained on",
                                                            timeout=20_000)
    page.get_by_role("button", name="Advanced settings").click()
    for elem_id, value in (("train-max-steps", 400), ("train-resolution", 128),
                           ("train-batch-size", 4), ("train-sample-every", 0),
                           ("train-checkpoint-every", 100)):
        fill_number(page, elem_id, value)
    page.locator("#train-start").click()

    text = page.locator("#train-progress-text")
    expect(text).to_contain_text("Step", timeout=120_000)
    page.wait_for_function(LINE_DRAWN_JS, timeout=60_000)
    chart = page.locator("#train-loss").evaluate(CHART_JS)
    rows = metrics_rows(app_url.workspace)
    ARTIFACTS.mkdir(exist_ok=True)  # the chart alone, then the whole page, for people
    page.locator("#train-loss").screenshot(path=str(ARTIFACTS / "loss-chart-first-frame.png"))
    screenshot(page, "loss-chart-first-frame-page")
    # Still the first frames of a live run, not a finished one redrawn after a reload.
    assert 1 <= len(rows) < 400, len(rows)
    expect(text).not_to_contain_text("finished")

    # (a) the values the LinePlot receives: step integer, loss float, numeric axis types.
    assert_typed(loss_frame(rows[:1]))
    assert_typed(loss_frame(rows))

    # (b) what the browser drew: numeric axes with a few labels, and a line.
    assert chart is not None, "no SVG chart in #train-loss"
    assert_numeric_axes(chart)
    assert_line_drawn(chart)

    page.locator("#train-cancel").click()
    expect(text).to_contain_text("cancelled", timeout=60_000)
