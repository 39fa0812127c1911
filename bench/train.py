"""Training benchmark: what does the trainer cost over a bare LoRA step, and what does
caching latents and text embeddings save over encoding every step?

Side by side, in one process, on the tiny SD 1.5 model (offline; CPU unless a GPU is
present), interleaved round by round so machine load hits every variant alike:

- trainer step:    `Trainer.train_step` — batch from the bucketed cache,
                   noise/timesteps from the run's generator, min-SNR, clipping,
                   LR schedule, accelerate wrappers
- bare step:       the same UNet + LoRA forward, backward and AdamW step on identical,
                   pre-made tensors: nothing else
- reference step:  the diffusers example's loop: open the image files, resize/crop, VAE
                   encode, tokenize and text-encode, then the same UNet step

The last line is `train: overhead=<x> cache_speedup=<y> peak_rss_mb=<z>` where
x = median(trainer step) / median(bare step)        (target <= 1.10)
y = median(reference step) / median(trainer step)   (steps/s with caching over without)
z = the process's peak resident memory in MB
"""

from __future__ import annotations

import argparse
import os
import resource
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
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402
from training_helpers import Quiet, make_trainable_style  # noqa: E402

from style_studio.studio import Studio  # noqa: E402
from style_studio.training.conditioning import TextConditioner  # noqa: E402
from style_studio.training.config import TARGETS, TrainConfig  # noqa: E402
from style_studio.training.data import fit_to_bucket  # noqa: E402
from style_studio.training.trainer import Trainer, TrainSpec  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="steps per variant per round")
    parser.add_argument("--size", type=int, default=256, help="image size (latents = size/8)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is steadiest on a shared 2-core machine)")
    return parser.parse_args()


def make_trainer(studio: Studio, tmp: Path, args: argparse.Namespace) -> Trainer:
    style, _ = make_trainable_style(studio, tmp, count=args.images, name="Bench",
                                    sizes=[(args.size, args.size)])
    config = TrainConfig.preset("quick", rank=args.rank, alpha=float(args.rank),
                                learning_rate=1e-4, batch_size=args.batch,
                                resolution=args.size, max_steps=10_000, sample_every=0,
                                checkpoint_every=0, sample_prompts=[], lr_scheduler="constant")
    plan = studio.consent.require_trainable(style.id)
    run_dir = tmp / "run"
    run_dir.mkdir()
    spec = TrainSpec(run_id="bench", run_dir=run_dir, family="sd15", base_ref="tiny-sd15",
                     models_dir=studio.workspace.models_dir, config=config,
                     items=plan.included, trigger=style.trigger,
                     cache_root=studio.workspace.cache_dir(style.id), identity="tiny-sd15@seed0",
                     kohya_name="bench.kohya.safetensors", metadata=lambda fmt, step: {})
    trainer = Trainer(spec, Quiet())
    trainer.prepare()
    return trainer


def bare_step_fn(trainer: Trainer) -> Callable[[], None]:
    """The same UNet + LoRA on identical tensors, with none of the trainer around it."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    unet = UNet2DConditionModel.from_config(trainer.denoiser.config)
    unet.load_state_dict(trainer.pipe.unet.state_dict(), strict=False)
    unet.requires_grad_(False)
    cfg = trainer.cfg
    unet.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, init_lora_weights="gaussian",
                                target_modules=list(TARGETS[cfg.targets])))
    unet.train()
    params = [p for p in unet.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    batch = trainer._batch(0)
    latents, embeds = batch["latents"], batch["embeds"]
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(latents.shape, generator=gen)
    timesteps = torch.randint(0, 1000, (len(latents),), generator=gen)
    noisy = trainer.noise_scheduler.add_noise(latents, noise, timesteps)

    def step() -> None:
        pred = unet(noisy, timesteps, embeds).sample
        loss = F.mse_loss(pred, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def reference_step_fn(trainer: Trainer) -> Callable[[], None]:
    """Like diffusers' train_text_to_image_lora.py: decode, encode and embed every step."""
    pipe, items, cfg = trainer.pipe, trainer.spec.items, trainer.cfg
    text = TextConditioner(pipe, "sd15")
    gen = torch.Generator().manual_seed(1)
    unet, optimizer = trainer.denoiser, trainer.optimizer
    state = {"i": 0}

    def step() -> None:
        picks = [items[(state["i"] + k) % len(items)] for k in range(cfg.batch_size)]
        state["i"] += cfg.batch_size
        pixels = []
        for item in picks:
            with Image.open(item.path) as image:
                pixels.append(fit_to_bucket(image, (cfg.resolution, cfg.resolution)).pixels)
        with torch.no_grad():
            latents = pipe.vae.encode(torch.stack(pixels)).latent_dist.mean
            latents = latents * pipe.vae.config.scaling_factor
            embeds = text.encode([f"shapestyle, {item.caption}" for item in picks], "cpu").embeds
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.randint(0, 1000, (len(latents),), generator=gen)
        noisy = trainer.noise_scheduler.add_noise(latents, noise, timesteps)
        pred = unet(noisy, timesteps, embeds).sample
        loss = F.mse_loss(pred, noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def timed(fn: Callable[[], None], steps: int) -> tuple[float, float]:
    """(wall s, CPU s) per step."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder, Studio.open(Path(folder) / "ws") as studio:
        trainer = make_trainer(studio, Path(folder), args)
        counter = {"step": 0}

        def trainer_step() -> None:
            trainer.train_step(counter["step"])
            counter["step"] += 1

        variants = {"trainer step": trainer_step, "bare step": bare_step_fn(trainer),
                    "reference step": reference_step_fn(trainer)}
        for fn in variants.values():  # warm up allocators and kernels
            timed(fn, 2)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, fn in variants.items():
                results[name].append(timed(fn, args.steps))
    medians = {name: (statistics.median(w for w, _ in rows), statistics.median(c for _, c in rows))
               for name, rows in results.items()}
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"tiny SD 1.5, {args.size}px ({args.size // 8}x{args.size // 8} latents), batch "
          f"{args.batch}, {args.images} images, rank {args.rank}, {args.threads} thread(s), "
          f"{args.rounds} rounds x {args.steps} steps; load average {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<16}{'wall ms':>10}{'CPU ms':>10}{'steps/s':>10}")
    for name, (wall, cpu) in medians.items():
        print(f"{name:<16}{wall * 1000:>10.1f}{cpu * 1000:>10.1f}{1 / wall:>10.2f}")
    trainer_cpu, bare_cpu, ref_cpu = (medians[n][1] for n in variants)
    trainer_wall, bare_wall, ref_wall = (medians[n][0] for n in variants)
    print(f"wall-time ratios: overhead={trainer_wall / bare_wall:.3f} "
          f"cache_speedup={ref_wall / trainer_wall:.2f}")
    print(f"train: overhead={trainer_cpu / bare_cpu:.3f} cache_speedup={ref_cpu / trainer_cpu:.2f} "
          f"peak_rss_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
