"""Demo benchmark: what does the offline demo cost on CPU, and does it visibly learn?

Measures, in one process (offline, CPU unless a GPU is present):

- toy base:  building the built-in toy model from scratch (`build_toy_model`, the
             pretraining the shipped `assets/toy-sd15/` came from) and its size on disk;
             copying the shipped folder into a workspace (what a fresh workspace pays)
- demo:      `open_demo_style` (ingest, approved captions, cleared consent)
- training:  the Quick draft preset on the demo style and the toy base, as the
             Training tab starts it (samples and checkpoints included)
- A/B:       the Playground's A/B (base vs LoRA, same seeds), and how far each image is
             from the demo's palette (mean RGB distance to the nearest palette colour)

The last line is `demo: toy_build_s=<a> train_s=<b> ab_s=<c> palette_base=<d>
palette_lora=<e>`; wall seconds, with the process's CPU seconds printed beside them
(this 2-core machine is shared, so CPU time is the steadier figure).
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

from style_studio.demo import DemoAssets, open_demo_style, palette_distance, style_palette  # noqa: E402
from style_studio.generate import GenerateRequest  # noqa: E402
from style_studio.studio import Studio, StudioConfig  # noqa: E402
from style_studio.toy_model import ASSET_DIR, TOY_ID, build_toy_model, ensure_toy_model  # noqa: E402
from style_studio.training_config import TrainConfig  # noqa: E402

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
    parser.add_argument("--seeds", type=int, default=4, help="A/B pairs to generate")
    parser.add_argument("--keep", type=Path, help="keep the workspace here")
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


def bench_demo(root: Path, threads: int, seeds: int) -> dict:
    result: dict = {}
    with Studio.open(root / "ws", StudioConfig(torch_threads=threads)) as studio:
        with Clock() as opened:
            style = open_demo_style(studio)
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
        palette = style_palette([Image.open(p) for p in DemoAssets.load().files])
        base = [palette_distance(Image.open(o.path), palette) for o in outputs
                if o.label == "A"]
        lora = [palette_distance(Image.open(o.path), palette) for o in outputs
                if o.label == "B"]
        print(f"palette distance, base: {[round(d, 1) for d in base]}", flush=True)
        print(f"palette distance, LoRA: {[round(d, 1) for d in lora]}", flush=True)
        result = {
            "open": {"wall_s": opened.wall, "cpu_s": opened.cpu},
            "train": {"wall_s": train.wall, "cpu_s": train.cpu, "steps": run.step,
                      "config": config.to_dict(), "loss_first": metrics[0]["loss_smooth"],
                      "loss_last": metrics[-1]["loss_smooth"]},
            "ab": {"wall_s": ab.wall, "cpu_s": ab.cpu, "seeds": seeds},
            "palette_base": sum(base) / len(base), "palette_lora": sum(lora) / len(lora),
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
        result.update(bench_demo(root, args.threads, args.seeds))
        result["load_after"] = os.getloadavg()[0]
        out = ROOT / "bench" / "out"
        out.mkdir(parents=True, exist_ok=True)
        (out / "demo.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        build = result["toy"].get("build", {}).get("wall_s", float("nan"))
        print(f"demo: toy_build_s={build:.0f} train_s={result['train']['wall_s']:.0f} "
              f"ab_s={result['ab']['wall_s']:.0f} palette_base={result['palette_base']:.1f} "
              f"palette_lora={result['palette_lora']:.1f}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
