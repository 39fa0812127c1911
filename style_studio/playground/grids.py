"""Labelled comparison grids: the way to choose the best checkpoint at a glance.

Rows are one axis (checkpoints), columns the other (LoRA scales or prompts); every row
and column carries its label in the image itself, so a grid shared on its own still
says what it compares.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont

from style_studio.base.errors import InvalidInput

MAX_CELLS = 36
_PAD = 8
_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)


@dataclass
class GridLayout:
    """What a grid compares: one label per row and per column, plus a title line."""

    row_labels: list[str]
    col_labels: list[str]
    title: str = ""
    row_axis: str = "checkpoint"
    col_axis: str = "scale"
    cells: list[list[str]] = field(default_factory=list)  # output file names, row-major

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.row_labels), len(self.col_labels)

    def check(self) -> None:
        rows, cols = self.shape
        if rows < 1 or cols < 1:
            raise InvalidInput("A grid needs at least one row and one column.")
        if rows * cols > MAX_CELLS:
            raise InvalidInput(f"A grid of {rows}×{cols} = {rows * cols} images is too big; "
                               f"keep it to {MAX_CELLS} images (fewer checkpoints or columns).")


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (OSError, TypeError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def _shorten(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class ComposedGrid:
    """The grid image and where each cell lies in it, (left, top, right, bottom)."""

    image: Image.Image
    boxes: list[list[tuple[int, int, int, int]]]


def compose_grid(cells: list[list[Image.Image]], layout: GridLayout,
                 min_cell: int = 128) -> ComposedGrid:
    """One image: the title, column labels on top, row labels on the left, the cells.

    Small images (the tiny model's 64 px) are enlarged with nearest-neighbour so labels
    stay readable and pixels stay honest.
    """
    layout.check()
    rows, cols = layout.shape
    if len(cells) != rows or any(len(row) != cols for row in cells):
        raise InvalidInput(f"The grid expected {rows}×{cols} images.")
    cell_w, cell_h = cells[0][0].size
    zoom = max(1, -(-min_cell // min(cell_w, cell_h)))
    cell_w, cell_h = cell_w * zoom, cell_h * zoom
    font = _font(14)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_texts = [_shorten(label, 24) for label in layout.row_labels]
    col_texts = [_shorten(label, max(8, cell_w // 8)) for label in layout.col_labels]
    line_h = max(_text_size(probe, t or "x", font)[1] for t in [*row_texts, *col_texts]) + 2
    label_w = max(_text_size(probe, t, font)[0] for t in row_texts) + 2 * _PAD
    title_h = line_h + _PAD if layout.title else 0
    top = title_h + line_h + 2 * _PAD
    width = label_w + cols * (cell_w + _PAD) + _PAD
    height = top + rows * (cell_h + _PAD) + _PAD
    canvas = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if layout.title:
        draw.text((_PAD, _PAD), _shorten(layout.title, width // 8), fill=_INK, font=font)
    for c, text in enumerate(col_texts):
        x = label_w + c * (cell_w + _PAD)
        draw.text((x, title_h + _PAD), text, fill=_INK, font=font)
    boxes: list[list[tuple[int, int, int, int]]] = []
    for r, row in enumerate(cells):
        y = top + r * (cell_h + _PAD)
        draw.text((_PAD, y + cell_h // 2 - line_h // 2), row_texts[r], fill=_INK, font=font)
        boxes.append([])
        for c, image in enumerate(row):
            x = label_w + c * (cell_w + _PAD)
            tile = image.convert("RGB").resize((cell_w, cell_h), Image.Resampling.NEAREST)
            canvas.paste(tile, (x, y))
            boxes[r].append((x, y, x + cell_w, y + cell_h))
    return ComposedGrid(canvas, boxes)
