"""Demo benchmark: what does the offline demo cost on CPU, and does it visibly learn?

Measures, in one process (offline, CPU unless a GPU is present):

- toy base:  building the built-in toy model from scratch (`build_toy_model`, the
             pretraining the shipped `assets/toy-sd15/` came from) and its size on disk;
             copying the shipped folder into a workspace (what a fresh workspace pays)
- demo:      `studio.demo.open()` (ingest, approved captions, cleared consent)
- training:  the Quick draft preset on the demo style and the toy base, as the
             Training tab starts it (samples and checkpoints included)
- A/B:       the Playground's A/B (base vs LoRA, same seeds), and how far each image is
             from the demo style (`style_signature`: Lab colour histogram + lightness
             spectrum, 0-1), plus the LoRA images' fine detail over the training images'

It fails (exit 1) unless the LoRA image is closer to the style than the base image on
every seed and its fine detail is no higher than the training images' (`hf_ratio` <= 1):
the speckle of issue 11 passed the old palette measure and fails this one.

The last line is `demo: toy_build_s=<a> train_s=<b> ab_s=<c> style_base=<d>
style_lora=<e> hf_ratio=<f>`; wall seconds, with the process's CPU seconds printed beside
them (this 2-core machine is shared, so CPU time is the steadier figure).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from style_studio.demo import DemoAssets  # noqa: E402
from style_studio.images.style_signature import StyleSignature, compare_ab  # noqa: E402
from style_studio.models.toy import ASSET_DIR, TOY_ID, build_toy_model, ensure_toy_model  # noqa: E402
from style_studio.playground.grids import GridLayout, compose_grid  # noqa: E402
from style_studio.playground.records import GenerateRequest  # noqa: E402
from style_studio.studio import Studio, StudioConfig  # noqa: E402
from style_studio.training.config import TrainConfig  # noqa: E402

PROMPT = "mauvestripe, a lighthouse on a rocky coast at dusk"


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:7.1f} s wall {self.cpu:7.1f} s CPU"


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--skip-toy-build", action="store_true",
                        help="do not rebuild the toy model from scratch (~minutes)")
    parser.add_argument("--seeds", type=int, default=8, help="A/B pairs to generate")
    parser.add_argument("--keep", type=Path, help="keep the workspace here")
    parser.add_argument("--grid", type=Path, help="write the A/B grid (base row, LoRA row, "
                        "training images row) as a PNG here, e.g. docs/images/demo-ab.png")
    return parser.parse_args()


def bench_toy(root: Path, skip_build: bool) -> dict:
    result: dict = {}
    if not skip_build:
        with Clock() as build:
            build_toy_model(root / "toy-built")
        result["build"] = {"wall_s": build.wall, "cpu_s": build.cpu,
                           "bytes": folder_size(root / "toy-built")}
        print(f"toy base, built from scratch:  {build}  "
              f"{folder_size(root / 'toy-built') / 1e6:.1f} MB", flush=True)
    with Clock() as copy:
        ensure_toy_model(root / "ws" / "models")
    source = "copied from assets/" if (ASSET_DIR / "model_index.json").is_file() else "built"
    result["ensure"] = {"wall_s": copy.wall, "cpu_s": copy.cpu, "source": source,
                        "bytes": folder_size(root / "ws" / "models" / TOY_ID)}
    print(f"toy base, {source} into a workspace: {copy}", flush=True)
    return result


def ab_grid(base: list[Image.Image], lora: list[Image.Image], per_seed: list, path: Path) -> None:
    """Base row, LoRA row, training images row: what the README shows."""
    training = [Image.open(p) for p in DemoAssets.load().files[: len(base)]]
    layout = GridLayout(["A · base", "B · LoRA", "training images"],
                        [f"seed {seed}: {a:.2f} -> {b:.2f}" for seed, a, b in per_seed],
                        title="Demo style, Quick draft on the toy model - style distance "
                              "base -> LoRA (lower is closer)")
    path.parent.mkdir(parents=True, exist_ok=True)
    compose_grid([base, lora, training], layout).image.save(path, optimize=True)


def bench_demo(root: Path, threads: int, seeds: int, grid: Path | None) -> dict:
    result: dict = {}
    with Studio.open(root / "ws", StudioConfig(torch_threads=threads)) as studio:
        with Clock() as opened:
            style = studio.demo.open()
        print(f"open the demo style:           {opened}", flush=True)
        config = TrainConfig.preset("quick")
        with Clock() as train:
            job = studio.jobs.wait(studio.training.start(style.id, config).id, timeout=7200)
        run = studio.training.runs(style.id)[0]
        metrics = studio.training.metrics(run.id)
        if job.status != "done":
            raise SystemExit(f"training {job.status}: {job.error}")
        print(f"quick preset, {run.step} steps:     {train}  base {run.base_model}, "
              f"{studio.workspace.run_dir(style.id, run.id).name}", flush=True)
        request = GenerateRequest(style_id=style.id, run_id=run.id, prompt=PROMPT, seed=1,
                                  count=seeds)
        with Clock() as ab:
            job = studio.jobs.wait(studio.playground.submit_ab(request).id, timeout=1800)
        outputs = studio.playground.outputs(job.id)
        print(f"A/B, {seeds} seeds:                 {ab}", flush=True)
        signature = StyleSignature.of_files(DemoAssets.load().files)
        pairs = {label: [o for o in outputs if o.label == label] for label in ("A", "B")}
        images = {label: [Image.open(o.path) for o in items] for label, items in pairs.items()}
        verdict = compare_ab(images["A"], images["B"], signature,
                             [o.settings.seed for o in pairs["A"]])
        if grid:
            ab_grid(images["A"], images["B"], verdict.per_seed, grid)
        print(f"style distance, base: {[round(a, 3) for _, a, _ in verdict.per_seed]}")
        print(f"style distance, LoRA: {[round(b, 3) for _, _, b in verdict.per_seed]}")
        print(verdict.summary(), flush=True)
        result = {
            "open": {"wall_s": opened.wall, "cpu_s": opened.cpu},
            "train": {"wall_s": train.wall, "cpu_s": train.cpu, "steps": run.step,
                      "config": config.to_dict(), "loss_first": metrics[0]["loss_smooth"],
                      "loss_last": metrics[-1]["loss_smooth"]},
            "ab": {"wall_s": ab.wall, "cpu_s": ab.cpu, "seeds": seeds},
            "style_base": verdict.base.total, "style_lora": verdict.lora.total,
            "hf_ratio": verdict.lora.hf_ratio, "closer_on": verdict.closer_on,
            "per_seed": verdict.per_seed, "shows_style": verdict.shows_style(),
        }
    return result


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    root = args.keep or Path(tempfile.mkdtemp(prefix="demo-bench-"))
    try:
        print(f"torch threads: {args.threads}; load average {os.getloadavg()[0]:.1f}")
        result = {"threads": args.threads, "load_before": os.getloadavg()[0]}
        result["toy"] = bench_toy(root, args.skip_toy_build)
        result.update(bench_demo(root, args.threads, args.seeds, args.grid))
        result["load_after"] = os.getloadavg()[0]
        out = ROOT / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "demo.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        build = result["toy"].get("build", {}).get("wall_s", float("nan"))
        print(f"demo: toy_build_s={build:.0f} train_s={result['train']['wall_s']:.0f} "
              f"ab_s={result['ab']['wall_s']:.0f} style_base={result['style_base']:.3f} "
              f"style_lora={result['style_lora']:.3f} hf_ratio={result['hf_ratio']:.2f}")
        if not result["shows_style"]:
            raise SystemExit("The LoRA does not show the style: closer than the base on "
                             f"{result['closer_on']} of {args.seeds} seeds, fine detail "
                             f"{result['hf_ratio']:.2f}x the training images'.")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
