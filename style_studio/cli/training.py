"""`train`, `runs` and `export`: the Training tab from the shell."""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from style_studio.studio import Run, Studio, TrainConfig

from .common import Cancelled, Result, find_run, find_style, follow, plain


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    train = sub.add_parser(
        "train", parents=[common], help="train a LoRA (a preset or a config file), or resume",
        description="Train the style's cleared, captioned images. Settings: a preset, then a "
                    "TOML/JSON file of TrainConfig fields (its 'preset' key picks the "
                    "preset), then --steps/--resolution/--set. Ctrl-C stops at the next step "
                    "with a checkpoint; --resume RUN carries on from it.")
    train.add_argument("style", nargs="?", help="style id or name (not with --resume)")
    train.add_argument("--preset", default=None,
                       help="quick (Quick draft), balanced (the default) or fine")
    train.add_argument("--config", type=Path, default=None, help="a .toml or .json file")
    train.add_argument("--steps", type=int, default=None, help="max_steps")
    train.add_argument("--resolution", type=int, default=None, help="side in pixels")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="any other setting, e.g. --set rank=8 (repeatable)")
    train.add_argument("--resume", metavar="RUN", default=None,
                       help="resume a cancelled, interrupted or failed run")
    train.add_argument("--train-base-model", dest="train_base", default=None,
                       help="train on this base instead of the style's")
    train.set_defaults(handler=train_style)

    runs = sub.add_parser("runs", parents=[common], help="list training runs")
    runs.add_argument("style", nargs="?", help="style id or name (default: every style)")
    runs.set_defaults(handler=list_runs)

    export = sub.add_parser("export", parents=[common],
                            help="copy a run's LoRA files, model card, report and manifest")
    export.add_argument("run", help="run id, or 'latest'")
    export.add_argument("dest", type=Path, help="folder to write into")
    export.set_defaults(handler=export_run)


def load_config(args: argparse.Namespace) -> TrainConfig:
    """Preset, then the file, then the flags; unknown keys are refused by name."""
    from style_studio.studio import InvalidInput, TrainConfig

    data: dict[str, Any] = {}
    if args.config:
        path = args.config.expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            raise InvalidInput(f"Cannot read the config file {path}.") from None
        try:
            data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, ValueError) as exc:
            raise InvalidInput(f"The config file {path.name} is not valid "
                               f"{'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: "
                               f"{exc}.") from None
        data = dict(data.get("training", data))  # a [training] table, or the top level
    preset = args.preset or data.pop("preset", None) or data.pop("preset_name", None) \
        or "balanced"
    data.pop("preset_name", None)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidInput(f"Write --set as KEY=VALUE (got '{item}').")
        try:
            data[key.strip()] = json.loads(value)
        except ValueError:
            data[key.strip()] = value
    if args.steps is not None:
        data["max_steps"] = args.steps
    if args.resolution is not None:
        data["resolution"] = args.resolution
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(f"Unknown training setting(s): {', '.join(unknown)}.")
    return TrainConfig.preset(preset, **data)


def run_dict(run: Run) -> dict[str, Any]:
    return {**plain(asdict(run)), "shown_status": run.shown_status}


def train_style(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import InvalidInput

    if args.resume:
        if args.style or args.config or args.preset or args.set or args.steps:
            raise InvalidInput("--resume carries on with the run's own settings: give only "
                               "the run id.")
        run = find_run(studio, args.resume)
        job = studio.training.resume(run.id)
        label = f"Resume {run.id}"
    else:
        style = find_style(studio, args.style)
        config = load_config(args)
        job = studio.training.start(style.id, config, base_model=args.train_base)
        run = studio.training.get_run(job.params["run_id"])
        label = f"Train '{style.name}'"
    try:
        follow(studio, job, args, label, cancel=lambda: studio.training.cancel(run.id))
    except Cancelled:
        stopped = studio.training.get_run(run.id)
        raise Cancelled(f"Run {run.id} stopped at step {stopped.step} of "
                        f"{stopped.total_steps}; carry on with 'style-studio train --resume "
                        f"{run.id}'.") from None
    run = studio.training.get_run(run.id)
    files = _files(run)
    lines = [f"Run {run.id}: {run.shown_status}, {run.step} of {run.total_steps} steps "
             f"on {run.image_count} image(s), base {run.base_model}{_on(run)}.",
             f"Files in {run.run_dir}:",
             *(f"  {f['key']}: {f['path']}" for f in files),
             f"Try it: style-studio generate {run.style_id} --run {run.id}"]
    return Result({"run": run_dict(run), "files": files}, lines)


def _files(run: Run) -> list[dict[str, str]]:
    """The run's own files (not copies): LoRAs, card, report, manifest."""
    lora = run.run_dir / "lora"
    found = [{"key": "lora", "path": str(p)} for p in sorted(lora.glob("*.safetensors"))] \
        if lora.is_dir() else []
    found += [{"key": key, "path": str(run.run_dir / name)} for key, name in
              (("card", "README.md"), ("report", "provenance.md"), ("manifest", "manifest.json"))
              if (run.run_dir / name).is_file()]
    return found


def _on(run: Run) -> str:
    """", 2 processes" for a run an `accelerate launch` trained; nothing for one process."""
    return f", {run.processes} processes" if run.processes > 1 else ""


def list_runs(studio: Studio, args: argparse.Namespace) -> Result:
    styles = [find_style(studio, args.style)] if args.style else studio.styles.list()
    runs = [(style, run) for style in styles for run in studio.training.runs(style.id)]
    lines = [f"{run.id}  {style.name}  {run.shown_status}  step {run.step}/{run.total_steps}  "
             f"{run.image_count} images  {run.created_at[:16]}"
             + (f"  {run.processes} processes" if run.processes > 1 else "")
             + (f"  ⚠ {'; '.join(run.flags)}" if run.flags else "")
             for style, run in runs]
    return Result({"runs": [{**run_dict(run), "style_name": style.name}
                            for style, run in runs]}, lines or ["No training runs yet."])


def export_run(studio: Studio, args: argparse.Namespace) -> Result:
    run = find_run(studio, args.run)
    dest = args.dest.expanduser()
    written = studio.training.export_files(run.id, dest)
    return Result({"run": run.id, "folder": str(dest), "files": [str(p) for p in written]},
                  [f"Exported run {run.id} ({len(written)} files) to {dest}:",
                   *(f"  {p.relative_to(dest)}" for p in written)])
