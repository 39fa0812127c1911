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

Then the flow-matching trainer, on a FLUX.1-shaped model built from config in this script
(2 double + 4 single blocks, 4 heads of 32, a T5 encoder of width 512 and 8 layers reading
512 tokens, the tiny CLIP and VAE), saved to a folder and loaded by the trainer like any
diffusers folder:

- flow trainer step: `Trainer.train_step` on that model: batch from the cache, σ from the
                     run's generator, the family adapter, clipping, LR schedule, accelerate
- bare flow step:    the minimum a FLUX.1 LoRA step must do, written here after diffusers'
                     `train_dreambooth_lora_flux.py`: pack the (pre-made) noisy latents,
                     image ids, transformer forward, unpack, velocity MSE, backward, AdamW
                     step; the same weights, LoRA and batch shapes
- text conditioning: `build_examples` + `LatentCache` over the style's captions, with the
                     text embeddings cached (warm) or not (cold: T5 + CLIP per caption);
                     latents are cached in both, so the ratio is the text cache's alone

The last line adds `flow_overhead=<a> text_cache_speedup=<b>` where
a = median(flow trainer step) / median(bare flow step)   (target <= 1.10)
b = median(cold text conditioning) / median(warm)
All ratios use CPU time of the process (wall-time ratios are printed beside them), and
peak_rss_mb is taken before the flow part starts, so it stays comparable with older runs.
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

from style_studio.models.devices import pick_device  # noqa: E402
from style_studio.models.families import family_spec  # noqa: E402
from style_studio.models.families.flux1 import FLUX1_TARGETS  # noqa: E402
from style_studio.models.families.parts import ready, tiny_flow_vae  # noqa: E402
from style_studio.models.loading import load_pipeline, model_identity  # noqa: E402
from style_studio.models.tokenizer_assets import (  # noqa: E402
    build_clip_tokenizer,
    build_t5_tokenizer,
    tiny_clip_text_config,
)
from style_studio.studio import Studio  # noqa: E402
from style_studio.training.conditioning import TextConditioner  # noqa: E402
from style_studio.training.config import TARGETS, TrainConfig  # noqa: E402
from style_studio.training.data import (  # noqa: E402
    DatasetSpec,
    LatentCache,
    build_examples,
    fit_to_bucket,
)
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
    flow = parser.add_argument_group("flow-matching trainer (FLUX.1-shaped model)")
    flow.add_argument("--flow-rounds", type=int, default=7)
    flow.add_argument("--flow-steps", type=int, default=3, help="steps per variant per round")
    flow.add_argument("--flow-size", type=int, default=256,
                      help="image size (latents = size/8, image tokens = (size/16)^2)")
    flow.add_argument("--flow-batch", type=int, default=2)
    flow.add_argument("--captions", type=int, default=16,
                      help="images (one caption each) in the flow style")
    flow.add_argument("--text-rounds", type=int, default=3,
                      help="cold/warm rounds of preparing the captions' text conditioning")
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


# -- flow matching ------------------------------------------------------------------------
T5_WIDTH, T5_LAYERS = 512, 8  # T5-XXL is 4096 wide and 24 deep; same shape rules


def build_flow_model(folder: Path) -> Path:
    """A FLUX.1-shaped pipeline from config (random weights), saved as a diffusers folder:
    big enough that a step is mostly tensor work, small enough for seconds on one core."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=2, num_single_layers=4, attention_head_dim=32,
        num_attention_heads=4, joint_attention_dim=T5_WIDTH, pooled_projection_dim=32,
        guidance_embeds=True, axes_dims_rope=(8, 12, 12))
    clip_tokenizer, t5_tokenizer = build_clip_tokenizer(), build_t5_tokenizer()
    clip = CLIPTextModel(tiny_clip_text_config(len(clip_tokenizer)))
    t5 = T5EncoderModel(T5Config(
        vocab_size=len(t5_tokenizer), d_model=T5_WIDTH, d_kv=64, d_ff=T5_WIDTH * 5 // 2,
        num_layers=T5_LAYERS, num_heads=8, feed_forward_proj="gated-gelu", pad_token_id=0,
        eos_token_id=1, decoder_start_token_id=0))
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096)
    pipe = ready(FluxPipeline(scheduler=scheduler, vae=tiny_flow_vae(3), text_encoder=clip,
                              tokenizer=clip_tokenizer, text_encoder_2=t5,
                              tokenizer_2=t5_tokenizer, transformer=transformer))
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def flow_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig.preset("quick", rank=args.rank, alpha=float(args.rank),
                              learning_rate=1e-4, batch_size=args.flow_batch,
                              resolution=args.flow_size, max_steps=10_000, sample_every=0,
                              checkpoint_every=0, sample_prompts=[], lr_scheduler="constant")


def text_cache_times(studio: Studio, style, ref: str, args: argparse.Namespace
                     ) -> dict[str, list[tuple[float, float]]]:
    """(wall s, CPU s) of preparing every caption's text conditioning, cold and warm, through
    the trainer's data path (`build_examples` + `LatentCache`, the trainer's encoders);
    the latents are cached in both, so only the text differs. Leaves the cache warm."""
    cfg, models_dir = flow_config(args), studio.workspace.models_dir
    device = pick_device(cfg.device)
    pipe = load_pipeline(ref, "flux1", models_dir, device)
    flow, dev = family_spec("flux1").flow, device.device
    assert flow is not None
    items = studio.consent.require_trainable(style.id).included
    root = studio.workspace.cache_dir(style.id)
    spec = DatasetSpec(cfg.resolution_for("flux1"), 16, style.trigger, cfg.flip, cache_text=True)

    @torch.no_grad()
    def encode_image(pixels: torch.Tensor) -> torch.Tensor:
        return pipe.vae.encode(pixels.to(dev, torch.float32)).latent_dist.mean

    @torch.no_grad()
    def encode_text(caption: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = flow.encode(pipe, [caption], dev)[0]
        return out["embeds"], out.get("pooled")

    def prepare() -> tuple[float, float]:
        cache = LatentCache(root, model_identity(ref, models_dir))
        wall, cpu = time.perf_counter(), time.process_time()
        examples = build_examples(items, spec, cache, encode_image, encode_text)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert len(examples) == len(items) and all(e.embeds is not None for e in examples)
        return wall, cpu

    prepare()  # fills the latents (and warms up the encoders)
    times: dict[str, list[tuple[float, float]]] = {"cold": [], "warm": []}
    for _ in range(args.text_rounds):
        for path in root.glob("*/text-*.safetensors"):
            path.unlink()
        times["cold"].append(prepare())
        times["warm"].append(prepare())
    return times


def make_flow_trainer(studio: Studio, tmp: Path, style, ref: str,
                      args: argparse.Namespace) -> Trainer:
    plan = studio.consent.require_trainable(style.id)
    run_dir = tmp / "flow-run"
    run_dir.mkdir()
    models_dir = studio.workspace.models_dir
    spec = TrainSpec(run_id="bench-flow", run_dir=run_dir, family="flux1", base_ref=ref,
                     models_dir=models_dir, config=flow_config(args), items=plan.included,
                     trigger=style.trigger, cache_root=studio.workspace.cache_dir(style.id),
                     identity=model_identity(ref, models_dir),
                     kohya_name="bench-flow.kohya.safetensors", metadata=lambda fmt, step: {})
    trainer = Trainer(spec, Quiet())
    trainer.prepare()
    trainer.denoiser.train()  # as Trainer.run does
    return trainer


def bare_flow_step_fn(trainer: Trainer, folder: Path) -> Callable[[], None]:
    """A FLUX.1 LoRA step as diffusers' train_dreambooth_lora_flux.py takes it, on the same
    base weights, LoRA and batch shapes, with nothing of the trainer's code."""
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig

    cfg = trainer.cfg
    model = FluxTransformer2DModel.from_pretrained(folder / "transformer")
    model.requires_grad_(False)
    model.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, init_lora_weights="gaussian",
                                 target_modules=list(FLUX1_TARGETS)))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    assert sum(p.numel() for p in params) == sum(p.numel() for p in trainer.params)
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

    examples = trainer.examples[:cfg.batch_size]  # the cache's tensors, pre-made as a batch
    vae = trainer.pipe.vae.config
    x0 = (torch.stack([e.latent for e in examples]) - vae.shift_factor) * vae.scaling_factor
    embeds = torch.stack([e.embeds for e in examples])
    pooled = torch.stack([e.pooled for e in examples])
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(x0.shape, generator=gen)
    sigmas = torch.sigmoid(torch.randn(len(x0), generator=gen))  # logit-normal
    s = sigmas.view(-1, 1, 1, 1)
    noisy, target = (1 - s) * x0 + s * noise, noise - x0
    guidance = torch.full((len(x0),), 3.5)
    txt_ids = torch.zeros(embeds.shape[1], 3)
    b, c, h, w = noisy.shape

    def step() -> None:
        packed = FluxPipeline._pack_latents(noisy, b, c, h, w)
        img_ids = FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, noisy.device,
                                                         noisy.dtype)
        pred = model(hidden_states=packed, timestep=sigmas, guidance=guidance,
                     pooled_projections=pooled, encoder_hidden_states=embeds, txt_ids=txt_ids,
                     img_ids=img_ids, return_dict=False)[0]
        pred = FluxPipeline._unpack_latents(pred, h * 8, w * 8, 8)
        loss = F.mse_loss(pred.float(), target.float())
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


Times = dict[str, list[tuple[float, float]]]


def interleaved(variants: dict[str, Callable[[], None]], rounds: int, steps: int) -> Times:
    """Each variant's (wall, CPU) per step, round by round, after a warm-up."""
    for fn in variants.values():  # warm up allocators and kernels
        timed(fn, 2)
    results: Times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            results[name].append(timed(fn, steps))
    return results


def medians(results: Times) -> dict[str, tuple[float, float]]:
    """(wall, CPU) medians per variant."""
    return {name: (statistics.median(w for w, _ in rows), statistics.median(c for _, c in rows))
            for name, rows in results.items()}


def print_table(rows: dict[str, tuple[float, float]], unit: str = "steps/s") -> None:
    print(f"{'variant':<20}{'wall ms':>10}{'CPU ms':>10}{unit:>10}")
    for name, (wall, cpu) in rows.items():
        print(f"{name:<20}{wall * 1000:>10.1f}{cpu * 1000:>10.1f}{1 / wall:>10.2f}")


def stepper(trainer: Trainer) -> Callable[[], None]:
    counter = {"step": 0}

    def trainer_step() -> None:
        trainer.train_step(counter["step"])
        counter["step"] += 1

    return trainer_step


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder, Studio.open(Path(folder) / "ws") as studio:
        tmp = Path(folder)
        trainer = make_trainer(studio, tmp, args)
        variants = {"trainer step": stepper(trainer), "bare step": bare_step_fn(trainer),
                    "reference step": reference_step_fn(trainer)}
        sd = medians(interleaved(variants, args.rounds, args.steps))
        trainer.release()
        del trainer, variants
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sd_load = os.getloadavg()[0]

        ref = str(build_flow_model(studio.workspace.models_dir / "bench-flux1"))
        style, _ = make_trainable_style(studio, tmp, family="flux1", count=args.captions,
                                        name="Bench flow",
                                        sizes=[(args.flow_size, args.flow_size)])
        text = medians(text_cache_times(studio, style, ref, args))
        wall, cpu = time.perf_counter(), time.process_time()
        flow_trainer = make_flow_trainer(studio, tmp, style, ref, args)  # the cache is warm
        warm_prepare = time.perf_counter() - wall, time.process_time() - cpu
        flow_variants = {"flow trainer step": stepper(flow_trainer),
                         "bare flow step": bare_flow_step_fn(flow_trainer, Path(ref))}
        flow = medians(interleaved(flow_variants, args.flow_rounds, args.flow_steps))
        text_tokens = flow_trainer.examples[0].embeds.shape[0]
    total_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"tiny SD 1.5, {args.size}px ({args.size // 8}x{args.size // 8} latents), batch "
          f"{args.batch}, {args.images} images, rank {args.rank}, {args.threads} thread(s), "
          f"{args.rounds} rounds x {args.steps} steps; load average {sd_load:.1f}")
    print_table(sd)
    trainer_wall, bare_wall, ref_wall = (sd[n][0] for n in sd)
    trainer_cpu, bare_cpu, ref_cpu = (sd[n][1] for n in sd)
    overhead, cache_speedup = trainer_cpu / bare_cpu, ref_cpu / trainer_cpu
    print(f"wall-time ratios: overhead={trainer_wall / bare_wall:.3f} "
          f"cache_speedup={ref_wall / trainer_wall:.2f}")

    side = args.flow_size // 16
    print(f"\nFLUX.1-shaped model (2+4 blocks, width 128; T5 {T5_WIDTH} wide, {T5_LAYERS} "
          f"layers), {args.flow_size}px ({side * side} image + {text_tokens} text tokens), "
          f"batch {args.flow_batch}, rank {args.rank}, {args.flow_rounds} rounds x "
          f"{args.flow_steps} steps; load average {os.getloadavg()[0]:.1f}")
    print_table(flow)
    (flow_wall, bare_flow_wall), (flow_cpu, bare_flow_cpu) = zip(*flow.values(), strict=True)
    print(f"\ntext conditioning of {args.captions} captions (latents cached), "
          f"{args.text_rounds} rounds")
    print_table({f"{name} cache": times for name, times in text.items()}, unit="runs/s")
    (cold_wall, warm_wall), (cold_cpu, warm_cpu) = zip(*text.values(), strict=True)
    flow_overhead, text_speedup = flow_cpu / bare_flow_cpu, cold_cpu / warm_cpu
    print(f"Trainer.prepare() with every caption cached: {warm_prepare[0]:.2f} s wall, "
          f"{warm_prepare[1]:.2f} s CPU (it still loads the text encoders and encodes the "
          f"empty caption; one cold caption costs {cold_cpu / args.captions * 1000:.0f} ms CPU)")
    print(f"wall-time ratios: flow_overhead={flow_wall / bare_flow_wall:.3f} "
          f"text_cache_speedup={cold_wall / warm_wall:.1f}; peak RSS with the flow part "
          f"{total_peak_mb:.0f} MB")
    print(f"train: overhead={overhead:.3f} cache_speedup={cache_speedup:.2f} "
          f"peak_rss_mb={peak_mb:.0f} flow_overhead={flow_overhead:.3f} "
          f"text_cache_speedup={text_speedup:.1f}")


if __name__ == "__main__":
    main()
