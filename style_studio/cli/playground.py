"""`generate`: the Playground from the shell (single images, A/B against the base, grids)."""

from __future__ import annotations

import argparse
import shutil
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from style_studio.studio import Output, Studio

from .common import Result, find_run, find_style, follow, plain


def _checkpoint(value: str) -> int | None:
    if value.lower() in ("final", "last"):
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"a checkpoint is a step number or 'final', not '{value}'") from None


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    gen = sub.add_parser(
        "generate", parents=[common],
        help="generate with a run's LoRA (or the base), A/B against the base, or a grid",
        description="Without --run the style's newest finished run is used; --base-only "
                    "draws without a LoRA. --ab draws each seed without and with the LoRA "
                    "and says which is closer to the training images. A grid has rows = "
                    "--grid-checkpoints and columns = --grid-scales or --grid-prompts.")
    gen.add_argument("style", help="style id or name")
    gen.add_argument("--run", default=None, help="run id, or 'latest'")
    gen.add_argument("--base-only", action="store_true", help="no LoRA: the base model alone")
    gen.add_argument("--checkpoint", type=_checkpoint, default=None,
                     help="a checkpoint's step (default: the final LoRA)")
    gen.add_argument("--scale", type=float, default=1.0, help="LoRA scale (default 1.0)")
    gen.add_argument("--prompt", default=None, help="default: the trigger word and a subject")
    gen.add_argument("--negative", default="", help="negative prompt (SD families)")
    gen.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    gen.add_argument("--count", type=int, default=1, help="images (seeds seed, seed+1, …)")
    gen.add_argument("--steps", type=int, default=None, help="default: the base model's own")
    gen.add_argument("--guidance", type=float, default=None)
    gen.add_argument("--size", type=int, default=None, help="width and height in pixels")
    gen.add_argument("--ab", action="store_true", help="A/B: base vs LoRA on each seed")
    gen.add_argument("--grid-checkpoints", nargs="+", type=_checkpoint, default=None,
                     metavar="STEP", help="grid rows: checkpoint steps or 'final'")
    cols = gen.add_mutually_exclusive_group()
    cols.add_argument("--grid-scales", nargs="+", type=float, default=None, metavar="SCALE")
    cols.add_argument("--grid-prompts", nargs="+", default=None, metavar="PROMPT")
    gen.add_argument("--out", type=Path, default=None,
                     help="also copy the images into this folder")
    gen.set_defaults(handler=generate)


def generate(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import InvalidInput

    style = find_style(studio, args.style)
    request = studio.playground.default_request(style.id)
    grid = bool(args.grid_checkpoints or args.grid_scales or args.grid_prompts)
    if args.base_only and (args.run or args.ab or grid):
        raise InvalidInput("--base-only draws without a LoRA; A/B and grids need a run.")
    run_id = None if args.base_only else (find_run(studio, args.run).id if args.run
                                          else request.run_id)
    if run_id is None and not args.base_only:
        raise InvalidInput(f"'{style.name}' has no finished run yet: train one with "
                           "'style-studio train', or add --base-only.")
    request = replace(
        request, run_id=run_id, checkpoint=args.checkpoint, lora_scale=args.scale,
        prompt=args.prompt if args.prompt is not None else request.prompt,
        negative_prompt=args.negative, seed=args.seed, count=args.count,
        steps=args.steps or request.steps,
        guidance=args.guidance if args.guidance is not None else request.guidance,
        width=args.size or request.width, height=args.size or request.height)
    if grid:
        if not (args.grid_scales or args.grid_prompts):
            raise InvalidInput("Give the grid's columns: --grid-scales or --grid-prompts.")
        job = studio.playground.submit_grid(request, args.grid_checkpoints or [args.checkpoint],
                                            scales=args.grid_scales, prompts=args.grid_prompts)
        label = "Grid"
    elif args.ab:
        job = studio.playground.submit_ab(request)
        label = "A/B"
    else:
        job = studio.playground.submit(request)
        label = "Generate"
    done = follow(studio, job, args, label, cancel=lambda: studio.playground.cancel(job.id))
    outputs = studio.playground.outputs(done.id)
    copies = _copy(outputs, args.out)
    data: dict[str, Any] = {"job": done.id, "outputs": [_output(o) for o in outputs]}
    lines = [f"{o.label + ': ' if o.label else ''}{o.path}  (seed {o.settings.seed}"
             + (f", run {o.settings.run_id} scale {o.settings.lora_scale:g}"
                if o.settings.lora_scale is not None else ", base model") + ")"
             for o in outputs]
    grid_path = studio.playground.grid_path(done.id)
    if grid_path:
        data["grid"] = str(grid_path)
        lines.append(f"Grid: {grid_path}")
    if args.ab:
        comparison = studio.playground.style_comparison(done.id)
        data["comparison"] = None if comparison is None else comparison_dict(comparison)
        if comparison is not None:
            lines.append(comparison.summary())
    if copies:
        data["copies"] = [str(p) for p in copies]
        lines.append(f"Copied {len(copies)} image(s) to {args.out}.")
    return Result(data, lines)


def comparison_dict(comparison: Any) -> dict[str, Any]:
    """A/B distances to the style (0 = the same, 1 = nothing in common)."""
    return {"base": comparison.base.total, "lora": comparison.lora.total,
            "lora_fine_detail_ratio": comparison.lora.hf_ratio,
            "closer_on": comparison.closer_on, "seeds": len(comparison.per_seed),
            "per_seed": [list(s) for s in comparison.per_seed],
            "shows_style": comparison.shows_style(), "summary": comparison.summary()}


def _output(output: Output) -> dict[str, Any]:
    return {"path": str(output.path), "label": output.label,
            "settings": plain(asdict(output.settings))}


def _copy(outputs: list[Output], folder: Path | None) -> list[Path]:
    if folder is None:
        return []
    folder = folder.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy2(o.path, folder / o.path.name)) for o in outputs]
