"""Playground benchmark: what does switching LoRA cost, next to generating and reloading?

Side by side, in one process, on the tiny SD 1.5 model (offline, CPU unless a GPU is
present), interleaved round by round so machine load hits every variant alike:

- generate only:            the LoRA already active; just the pipeline call
- switch (cached) + gen:    flip to another LoRA that is already an adapter
- switch (new) + gen:       a checkpoint never loaded before: read from disk, hash,
                            add as an adapter, activate, generate (the worst case)
- naive reload + gen:       load the base pipeline, load the LoRA, generate (no cache)

The last line is `playground: switch_overhead=<x> reload_ratio=<y>` where
x = median(switch (new) + gen) / median(generate only)   (target <= 1.2)
y = median(switch (new) + gen) / median(naive reload + gen)  (lower is better)
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import torch  # noqa: E402
from playground_fixtures import save_random_lora  # noqa: E402

from style_studio.models.devices import pick_device  # noqa: E402
from style_studio.models.loading import load_pipeline  # noqa: E402
from style_studio.models.tiny import TINY_IDS, ensure_tiny_model  # noqa: E402
from style_studio.playground.pipeline_cache import LoraSource, PipelineCache  # noqa: E402

BASE, FAMILY = TINY_IDS["sd15"], "sd15"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is steadiest on a shared 2-core machine)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device()
    work = Path(tempfile.mkdtemp(prefix="bench-playground-"))
    models_dir = work / "models"
    ensure_tiny_model(FAMILY, models_dir)
    loras = [LoraSource(work / f"lora-{i}", f"LoRA {i}") for i in range(args.rounds * 2 + 2)]
    for index, lora in enumerate(loras):
        save_random_lora(lora.lora_dir, seed=index)
    cached_pair, fresh = loras[:2], iter(loras[2:])
    cache = PipelineCache(models_dir, device=device)  # the app's bounds: 2 bases, 4 adapters
    parts: dict[str, list[float]] = {"LoRA switch alone (cached)": [],
                                     "LoRA switch alone (new LoRA)": [], "base load alone": []}

    def timed(part: str, fn: Callable):
        start = time.perf_counter()
        value = fn()
        parts[part].append(time.perf_counter() - start)
        return value

    def generate(pipe) -> None:
        pipe(prompt="inkwash, a heron in reeds", num_inference_steps=args.steps,
             width=args.size, height=args.size, output_type="np",
             generator=torch.Generator().manual_seed(0))

    def gen_only() -> None:
        generate(cache.activate(BASE, FAMILY, cached_pair[0]).pipe)

    flip = [0]

    def switch_cached() -> None:
        flip[0] ^= 1
        pair = cached_pair[flip[0]]
        generate(timed("LoRA switch alone (cached)",
                       lambda: cache.activate(BASE, FAMILY, pair)).pipe)

    def switch_new() -> None:
        lora = next(fresh)
        generate(timed("LoRA switch alone (new LoRA)",
                       lambda: cache.activate(BASE, FAMILY, lora)).pipe)

    def naive_reload() -> None:
        pipe = timed("base load alone", lambda: load_pipeline(BASE, FAMILY, models_dir, device))
        pipe.load_lora_weights(str(next(fresh).lora_dir), adapter_name="bench")
        pipe.set_adapters(["bench"], [1.0])
        generate(pipe)

    for lora in cached_pair:  # warm-up: base loaded, both cached adapters in place
        generate(cache.activate(BASE, FAMILY, lora).pipe)
    variants: dict[str, Callable[[], None]] = {
        GEN: gen_only, CACHED: switch_cached, NEW: switch_new, RELOAD: naive_reload}
    samples = measure(variants, args.rounds)
    print(f"config: tiny SD 1.5 ({BASE}), {args.size}x{args.size}, {args.steps} steps, "
          f"{device.label}, torch threads {args.threads}, {args.rounds} interleaved rounds")
    print(f"  {'variant':<30} {'wall ms':>8} {'cpu ms':>8}  ratios to generate-only "
          "(median of per-round ratios, wall / cpu)")
    for name, rows in samples.items():
        wall, cpu = (statistics.median(r[i] for r in rows) * 1000 for i in (0, 1))
        print(f"  {name:<30} {wall:8.0f} {cpu:8.0f}  "
              f"{paired(samples, name, GEN, 0):5.2f}x / {paired(samples, name, GEN, 1):5.2f}x")
    for name, values in parts.items():
        print(f"  {name:<30} {statistics.median(values) * 1000:8.0f} (wall ms)")
    print(f"  base loads by the cache: {cache.base_loads} "
          f"(the naive reload loaded the base {args.rounds} more times)")
    switch_overhead = paired(samples, NEW, GEN, 1)
    reload_ratio = paired(samples, NEW, RELOAD, 1)
    print("  headline = CPU-time ratios (the machine is shared; wall time is noisier)")
    print(f"playground: switch_overhead={switch_overhead:.3f} reload_ratio={reload_ratio:.3f}")


GEN, CACHED = "generate only", "switch (cached) + generate"
NEW, RELOAD = "switch (new LoRA) + generate", "naive reload + generate"


def measure(variants: dict[str, Callable[[], None]],
            rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(wall, cpu) seconds per variant per round; variants interleaved within each round."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            samples[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    return samples


def paired(samples: dict[str, list[tuple[float, float]]], top: str, bottom: str,
           index: int) -> float:
    """Median over rounds of top/bottom within the same round: drift cancels out."""
    return statistics.median(a[index] / b[index]
                             for a, b in zip(samples[top], samples[bottom], strict=True))

if __name__ == "__main__":
    main()
