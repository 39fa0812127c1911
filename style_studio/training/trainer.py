"""The LoRA training loop (diffusers + peft + accelerate) for SD 1.x, SDXL and the
flow-matching transformers (FLUX.1, FLUX.2 [klein], Z-Image).

One `Trainer` trains one run in the worker thread: it loads the base model, adds LoRA
adapters, encodes the gate's images and captions once (cached on disk), then steps. The
UNet families predict noise (or v) on a DDPM schedule; the flow families predict the
velocity on a rectified-flow path through their family's adapter (`models/families/
flow.py`), and their text encoders are freed once every caption is encoded. All randomness of a
step (noise, timesteps, flips, caption dropout) comes from one
seeded generator whose state is checkpointed with the optimizer and LR schedule, and
the batch order is a function of (seed, epoch): a resumed run equals an uninterrupted
one. A non-finite loss stops the run before anything is saved from that state.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DataLoaderConfiguration
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

from style_studio.base.errors import JobCancelled, StudioError
from style_studio.base.files import truncate_jsonl
from style_studio.base.units import format_duration
from style_studio.consent.gate import TrainItem
from style_studio.models.devices import pick_device
from style_studio.models.families import family_spec
from style_studio.models.families.flow import loss_weights, noisy_and_target, sample_sigmas
from style_studio.models.families.tool_keys import tool_state
from style_studio.models.loading import load_pipeline
from style_studio.models.objective import (
    denoising_target,
    effective_min_snr_gamma,
    min_snr_weights,
)

from .checkpoints import STATE_DIR, CheckpointFolder, TrainingState, read_state, replace_folder
from .checkpoints import write_state as write_training_state
from .conditioning import TextConditioner, time_ids
from .config import TrainConfig
from .data import (
    PROMPTS,
    BatchOrder,
    DatasetSpec,
    LatentCache,
    TrainExample,
    build_examples,
    cached_text_ok,
    pixel_step,
    training_caption,
)
from .distributed import Processes, take
from .eta import StepClock, window_for
from .export import (
    DIFFUSERS_NAME,
    all_finite,
    kohya_state,
    lora_state,
    write_diffusers,
    write_kohya,
)
from .lora_setup import add_adapters, make_optimizer, precision, restore_lora
from .sampling import SCORES_NAME, SampleWriter

SMOOTHING = 0.9


class TrainingDiverged(StudioError):
    """The loss or the weights became NaN/inf."""


class OutOfMemory(StudioError):
    """The GPU ran out of memory; the message says what to lower."""


class SaveFailed(StudioError):
    """A checkpoint or the final LoRA could not be written."""


class Reporter(Protocol):
    """What the trainer needs from a job context."""

    def progress(self, fraction: float, message: str = "", **extra: Any) -> None: ...

    def log(self, line: str) -> None: ...

    @property
    def cancel_requested(self) -> bool: ...


@dataclass
class TrainSpec:
    """One run as the service hands it to the trainer."""

    run_id: str
    run_dir: Path
    family: str
    base_ref: str
    models_dir: Path
    config: TrainConfig
    items: list[TrainItem]
    trigger: str
    cache_root: Path
    identity: str
    kohya_name: str
    # (format, step) -> __metadata__; None in the processes that do not write
    metadata: Callable[[str, int | None], dict[str, Any]] | None
    resume: bool = False
    on_checkpoint: Callable[[int], None] | None = None


@dataclass
class Outcome:
    step: int
    total_steps: int
    cache_hits: int
    cache_misses: int


class Trainer:
    """Trains one run; `prepare()` then `run()`, or `train_step()` for benchmarks.

    `processes`: this process's place in a multi-process launch (data-parallel; only the
    main process writes files); None = the one process."""

    def __init__(self, spec: TrainSpec, reporter: Reporter,
                 processes: Processes | None = None):
        self.spec = spec
        self.processes = processes or Processes()
        self.cfg = spec.config
        self.reporter = reporter
        self.checkpoints = CheckpointFolder(spec.run_dir)
        self.step = 0
        self.ema = 0.0
        self.ema_n = 0
        self.elapsed_before = 0.0
        self.last_saved = 0
        # wall time of recent steps, sample and checkpoint pauses included (the ETA)
        self.clock = StepClock(window_for(self.cfg.sample_every, self.cfg.checkpoint_every))

    # -- setup ----------------------------------------------------------------------------
    def prepare(self) -> None:
        cfg, spec, procs = self.cfg, self.spec, self.processes
        self.device = procs.device(cfg.device) if procs.distributed else pick_device(cfg.device)
        # accelerate keeps one process-wide state and refuses a second Accelerator with
        # another precision or device; runs here are sequential, so start each afresh.
        # split_batches: a step's batch is the global one, split across the processes, so
        # the LR schedule steps once per step (not once per process).
        AcceleratorState._reset_state(reset_partial_state=True)
        self.accelerator = Accelerator(
            mixed_precision=precision(cfg, self.device), cpu=self.device.device == "cpu",
            dataloader_config=DataLoaderConfiguration(split_batches=True))
        self.dev = self.accelerator.device
        if not procs.main:  # the main process fills the cache and tidies the run first
            self.accelerator.wait_for_everyone()
        self.family = family_spec(spec.family)
        self.flow = self.family.flow
        # The other processes only read the cache the main process has filled.
        self.cache = LatentCache(spec.cache_root, spec.identity, writes=procs.main)
        self.prompt_cache = LatentCache(spec.cache_root, spec.identity,  # not per image
                                        writes=procs.main)
        encoders = ("text_encoder", "text_encoder_2")[:len(self.family.text_encoders)]
        skip = encoders if self.flow is not None and self._all_text_cached() else ()
        self._status("Loading the base model" + (" (every text embedding is cached: "
                                                 "without its text encoders)" if skip else ""))
        self.pipe = load_pipeline(spec.base_ref, spec.family, spec.models_dir, self.device,
                                  skip=skip)
        self.pipe.set_progress_bar_config(disable=True)
        self.denoiser = getattr(self.pipe, self.family.denoiser)
        if self.flow is not None:
            if cfg.train_text_encoder:
                raise StudioError(f"Training the text encoder is not offered for "
                                  f"{self.family.label}: its encoders are frozen and cached. "
                                  "Turn \"Train the text encoder\" off.")
            self.noise_scheduler = FlowMatchEulerDiscreteScheduler.from_config(
                self.pipe.scheduler.config)
            self.min_snr_gamma = 0.0  # min-SNR is a DDPM weighting; flow uses its own
        else:
            self.noise_scheduler = DDPMScheduler.from_config(self.pipe.scheduler.config)
            self.min_snr_gamma = effective_min_snr_gamma(self.noise_scheduler,
                                                         cfg.min_snr_gamma)
        if self.flow is None and self.min_snr_gamma != cfg.min_snr_gamma:
            self.reporter.log("Min-SNR weighting is off for this run: the base model has a "
                              "zero-terminal-SNR schedule, where it would give the noisiest "
                              "steps (a picture's overall colour) no weight.")
        # The UNet families encode through CLIP as they go; a flow family's adapter encodes
        # once into the cache, so it keeps no reference to encoders it is about to free.
        self.text = TextConditioner(self.pipe, spec.family) if self.flow is None else None
        self.configs, self.models = add_adapters(
            self.denoiser, self.text.encoders if self.text else [], [self.pipe.vae], cfg,
            self.family.denoiser,
            self.family.default_targets if self.flow else None)
        self.examples = self._encode_dataset()
        self.empty_text = self._empty_text()
        self.sample_text = self._sample_text() if procs.main else None
        if self.flow is not None:
            self._free_text_encoders()
        self.order = BatchOrder([e.bucket for e in self.examples], cfg.batch_size, cfg.repeats,
                                cfg.seed)
        self.total_steps = (cfg.epochs * self.order.steps_per_epoch if cfg.epochs > 0
                            else cfg.max_steps)
        optimizer, scheduler, self.params = make_optimizer(self.models, cfg, self.total_steps)
        # Not wrapped in DistributedDataParallel: a process's share of a batch can be short
        # or empty, and a text encoder's LoRA is called outside the denoiser, so the
        # gradients are summed by hand (_sum_gradients). One process: the same as prepare().
        self.denoiser = self.accelerator.prepare_model(self.denoiser,
                                                       evaluation_mode=procs.distributed)
        self.optimizer, self.lr_scheduler = self.accelerator.prepare(optimizer, scheduler)
        self.generator = torch.Generator(device=self.dev).manual_seed(cfg.seed)
        if procs.main:
            self.samples = SampleWriter(self.pipe, spec.run_dir, cfg, spec.family, self.dev,
                                        lambda: self.reporter.cancel_requested,
                                        self.sample_text)
            self.samples.set_style([item.path for item in spec.items])
        if spec.resume:
            self._restore()
        if procs.main and procs.distributed:
            self.accelerator.wait_for_everyone()

    def _encode_dataset(self) -> list[TrainExample]:
        cfg, spec, vae = self.cfg, self.spec, self.pipe.vae
        vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
        step = (vae_scale * 2 if self.flow is not None  # 2x2 latent patches
                else pixel_step(vae_scale, len(self.denoiser.config.block_out_channels)))
        data_spec = DatasetSpec(cfg.resolution_for(spec.family), step, spec.trigger, cfg.flip,
                                cache_text=not cfg.train_text_encoder)
        vae_dtype = vae.dtype
        if vae_dtype != torch.float32:
            vae.to(torch.float32)  # SDXL's VAE overflows in fp16; latents are cached anyway

        @torch.no_grad()
        def encode_image(pixels: torch.Tensor) -> torch.Tensor:
            # The posterior mean, as kohya's cache and many trainers use: a real VAE's
            # posterior std is ~1% of the signal, so sampling adds almost nothing there,
            # while the toy model's random VAE has std ~1 and would drown the image.
            return vae.encode(pixels.to(self.dev, torch.float32)).latent_dist.mean

        @torch.no_grad()
        def encode_text(caption: str) -> tuple[torch.Tensor, torch.Tensor | None]:
            if self.flow is not None:
                out = self.flow.encode(self.pipe, [caption], self.dev)[0]
                return out["embeds"], out.get("pooled")
            out = self.text.encode([caption], self.dev)
            return out.embeds[0], None if out.pooled is None else out.pooled[0]

        try:
            return build_examples(
                spec.items, data_spec, self.cache, encode_image, encode_text,
                progress=lambda done, total, msg: self.reporter.progress(
                    0.0, msg, phase="preparing", prepared=done, images=total),
                check_cancelled=self._check_cancelled_early)
        finally:
            if vae_dtype != torch.float32:
                vae.to(vae_dtype)

    def _check_cancelled_early(self) -> None:
        if self.reporter.cancel_requested:
            raise JobCancelled(f"{self._why_stopped()} while preparing the images; nothing "
                               "was trained.")

    def _all_text_cached(self) -> bool:
        """Every caption, the empty caption and the sample prompts have readable cached
        embeddings for this base model, so its text encoders need not be loaded at all."""
        if self.cfg.train_text_encoder:
            return False
        needed = [self.cache.text_path(item.sha256,
                                       training_caption(item.caption, self.spec.trigger))
                  for item in self.spec.items]
        needed += [self.prompt_cache.text_path(PROMPTS, p)
                   for p in ["", *self.cfg.sample_prompts]]
        return all(cached_text_ok(path) for path in needed)

    def _prompt_text(self, prompt: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A prompt's cached flow text tensors (the empty caption, sample prompts)."""
        assert self.flow is not None

        def encode() -> tuple[torch.Tensor, torch.Tensor | None]:
            out = self.flow.encode(self.pipe, [prompt], self.dev)[0]
            return out["embeds"], out.get("pooled")

        return self.prompt_cache.text(PROMPTS, prompt, encode)

    @torch.no_grad()
    def _empty_text(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.flow is not None:
            embeds, pooled = self._prompt_text("")
            return embeds.float().cpu(), pooled
        out = self.text.encode([""], self.dev)
        return out.embeds[0].float().cpu(), None if out.pooled is None else out.pooled[0].cpu()

    @torch.no_grad()
    def _sample_text(self) -> list[dict[str, Any]] | None:
        """The sample prompts as pipeline arguments, encoded now: a flow family's text
        encoders are freed before training (None: the UNet pipelines encode as they go)."""
        if self.flow is None:
            return None
        negative = self._text_tensors(*self.empty_text)
        dtype = self.denoiser.dtype
        return [self.flow.pipeline_kwargs(self._text_tensors(*self._prompt_text(p)),
                                          negative, self.dev, dtype)
                for p in self.cfg.sample_prompts]

    @staticmethod
    def _text_tensors(embeds: torch.Tensor, pooled: torch.Tensor | None) -> dict:
        return {"embeds": embeds} if pooled is None else {"embeds": embeds, "pooled": pooled}

    def _free_text_encoders(self) -> None:
        """T5-XXL or Qwen3 would hold most of the memory; every caption is cached now."""
        for name in ("text_encoder", "text_encoder_2"):
            if getattr(self.pipe, name, None) is not None:
                setattr(self.pipe, name, None)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- resume ---------------------------------------------------------------------------
    def _restore(self) -> None:
        main = self.processes.main
        if main:
            self.checkpoints.clean_temp()
        step = self.checkpoints.latest()
        if step is None:
            if main:
                self.reporter.log("No complete checkpoint yet: starting again from step 0.")
            return
        state = read_state(self.checkpoints.path(step) / STATE_DIR)
        restore_lora({k: self.accelerator.unwrap_model(m) for k, m in self.models.items()},
                     state.lora)
        self.optimizer.load_state_dict(state.optimizer)
        self.lr_scheduler.load_state_dict(state.scheduler)
        self.generator.set_state(state.generator.to("cpu"))
        self.step = self.last_saved = state.step
        self.ema = float(state.extra.get("ema", 0.0))
        self.ema_n = int(state.extra.get("ema_n", 0))
        self.elapsed_before = float(state.extra.get("elapsed_s", 0.0))
        if not main:
            return
        self.checkpoints.drop_after(step)
        for name in ("metrics.jsonl", SCORES_NAME):  # a resume writes these rows again
            truncate_jsonl(self.spec.run_dir / name, step)
        self.reporter.log(f"Resumed from the checkpoint at step {step}.")

    # -- one step -------------------------------------------------------------------------
    def _batch(self, step: int) -> dict[str, torch.Tensor]:
        _, indices = self.order.batch_at(step)
        examples = [self.examples[i] for i in indices]
        gen, dev, n = self.generator, self.dev, len(examples)
        flips = (torch.rand(n, generator=gen, device=dev) < 0.5).tolist() if self.cfg.flip \
            else [False] * n
        drops = (torch.rand(n, generator=gen, device=dev) < self.cfg.caption_dropout).tolist() \
            if self.cfg.caption_dropout > 0 else [False] * n
        latents = torch.stack([e.latent_flipped if f and e.latent_flipped is not None
                               else e.latent for e, f in zip(examples, flips, strict=True)])
        if self.flow is not None:
            return self._flow_batch(latents.to(dev), examples, drops)
        latents = latents.to(dev) * self.pipe.vae.config.scaling_factor
        batch = {"latents": latents}
        if self.cfg.train_text_encoder:
            batch["captions"] = ["" if d else e.caption for e, d in zip(examples, drops,
                                                                        strict=True)]
        else:
            embeds = [self.empty_text[0] if d else e.embeds for e, d in zip(examples, drops,
                                                                             strict=True)]
            batch["embeds"] = torch.stack(embeds).to(dev)
            if self.spec.family == "sdxl":
                pooled = [self.empty_text[1] if d else e.pooled
                          for e, d in zip(examples, drops, strict=True)]
                batch["pooled"] = torch.stack(pooled).to(dev)
        if self.spec.family == "sdxl":
            batch["time_ids"] = torch.stack([
                time_ids(e.original_size, e.crop_top_left, (e.bucket[1], e.bucket[0]))
                for e in examples]).to(dev)
        return batch

    def _flow_batch(self, raw: torch.Tensor, examples: list[TrainExample],
                    drops: list[bool]) -> dict[str, Any]:
        assert self.flow is not None
        texts = [self._text_tensors(*self.empty_text) if d
                 else self._text_tensors(e.embeds, e.pooled)
                 for e, d in zip(examples, drops, strict=True)]
        return {"latents": self.flow.latents(self.pipe, raw),
                "text": self.flow.collate(texts, self.dev)}

    def _conditioning(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict | None]:
        if "captions" in batch:
            out = self.text.encode(batch["captions"], self.dev)
            embeds, pooled = out.embeds, out.pooled
        else:
            embeds, pooled = batch["embeds"], batch.get("pooled")
        if self.spec.family != "sdxl":
            return embeds, None
        return embeds, {"text_embeds": pooled, "time_ids": batch["time_ids"]}

    def denoising_loss(self, pred: torch.Tensor, target: torch.Tensor,
                       timesteps: torch.Tensor) -> torch.Tensor:
        """MSE per sample, weighted by min-SNR-γ (Hang et al. 2023) when γ > 0."""
        per_sample = F.mse_loss(pred.float(), target.float(), reduction="none")
        per_sample = per_sample.mean(dim=list(range(1, per_sample.ndim)))
        gamma = self.min_snr_gamma
        if gamma <= 0:
            return per_sample.mean()
        return (per_sample * min_snr_weights(self.noise_scheduler, timesteps, gamma)).mean()

    def flow_loss(self, batch: dict[str, Any], noise: torch.Tensor,
                  rows: slice | None = None) -> torch.Tensor | None:
        """Rectified flow: the velocity from data to noise at a σ drawn like the family's
        sampler walks it; MSE per sample with the recipe's weighting. `rows`: this
        process's share of the batch (σ is drawn for all of it); None when it is empty."""
        assert self.flow is not None
        latents = batch["latents"]
        sigmas = sample_sigmas(latents.shape[0], self.flow.recipe,
                               dict(self.noise_scheduler.config),
                               self.flow.image_seq_len(latents), self.generator, self.dev)
        noisy, target = noisy_and_target(latents, noise, sigmas)
        if rows is not None:
            noisy, target, sigmas, batch = (noisy[rows], target[rows], sigmas[rows],
                                            take(batch, rows))
            if noisy.shape[0] == 0:
                return None
        with self.accelerator.autocast():
            pred = self.flow.velocity(self.denoiser, noisy, sigmas, batch["text"])
        per_sample = F.mse_loss(pred.float(), target.float(), reduction="none")
        per_sample = per_sample.mean(dim=list(range(1, per_sample.ndim)))
        return (per_sample * loss_weights(self.flow.recipe, sigmas)).mean()

    def train_step(self, step: int) -> float:
        """One optimizer step on the batch of 0-based `step`; returns the loss (of the
        whole batch: with several processes, each computes its rows' part)."""
        batch = self._batch(step)
        latents, gen, dev = batch["latents"], self.generator, self.dev
        # Every draw is for the whole batch, in every process: the generator stays the same
        # everywhere, and a row gets the same noise whatever the number of processes.
        noise = torch.randn(latents.shape, generator=gen, device=dev)
        if self.cfg.noise_offset > 0:
            noise = noise + self.cfg.noise_offset * torch.randn(
                (*latents.shape[:2], 1, 1), generator=gen, device=dev)
        n = latents.shape[0]
        rows = self.processes.rows(n) if self.processes.distributed else None
        loss: torch.Tensor | None
        if self.flow is not None:
            loss = self.flow_loss(batch, noise, rows)
        else:
            timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps,
                                      (n,), generator=gen, device=dev)
            noisy = self.noise_scheduler.add_noise(latents, noise, timesteps)
            target = denoising_target(self.noise_scheduler, latents, noise, timesteps)
            if rows is not None:
                noisy, target, timesteps, batch = (noisy[rows], target[rows], timesteps[rows],
                                                   take(batch, rows))
            if noisy.shape[0] == 0:
                loss = None
            else:
                with self.accelerator.autocast():
                    embeds, added = self._conditioning(batch)
                    pred = self.denoiser(noisy, timesteps, embeds,
                                         added_cond_kwargs=added).sample
                loss = self.denoising_loss(pred, target, timesteps)
        if rows is not None:
            loss, value = self._share_of_loss(loss, rows, n)
        else:
            assert loss is not None
            value = float(loss.detach())
        if value != value or value in (float("inf"), float("-inf")):
            self.optimizer.zero_grad(set_to_none=True)
            raise TrainingDiverged(self._diverged_message(step + 1, value))
        if loss is not None:
            self.accelerator.backward(loss)
        if rows is not None:
            self._sum_gradients()
        if self.cfg.max_grad_norm > 0:
            self.accelerator.clip_grad_norm_(self.params, self.cfg.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return value

    def _share_of_loss(self, loss: torch.Tensor | None, rows: slice,
                       n: int) -> tuple[torch.Tensor | None, float]:
        """This process's part of the batch's mean loss (its rows' mean × rows / n), and
        the whole batch's mean, summed over the processes: every process sees the same
        value, so a non-finite loss stops them all."""
        count = rows.stop - rows.start
        part = None if loss is None else loss * (count / n)
        mine = part.detach().float() if part is not None else torch.zeros((), device=self.dev)
        return part, float(self.accelerator.reduce(mine, reduction="sum"))

    def _sum_gradients(self) -> None:
        """Add up the processes' gradients (each already scaled by its share of the
        batch), in one all-reduce; a process without rows adds zeros."""
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = torch.cat([g.reshape(-1).float() for g in grads])
        flat = self.accelerator.reduce(flat, reduction="sum")
        offset = 0
        for param in self.params:
            size = param.numel()
            param.grad = flat[offset:offset + size].view_as(param).to(param.dtype)
            offset += size

    def _stop_asked(self) -> bool:
        """Cancel (or the demo's time limit) as the main process sees it; every process
        learns it at the same step, so they stop together."""
        asked = bool(self.reporter.cancel_requested)
        if not self.processes.distributed:
            return asked
        flag = torch.tensor(float(asked and self.processes.main), device=self.dev)
        return bool(self.accelerator.reduce(flag, reduction="max") > 0)

    def _diverged_message(self, step: int, value: float) -> str:
        last = f"step {self.last_saved}" if self.last_saved else "none yet"
        lr = self.cfg.learning_rate
        return (f"Training stopped at step {step}: the loss became {value} instead of a "
                f"number, so the weights were going wrong. Nothing from this state was saved "
                f"or exported (last good checkpoint: {last}). Start a new run with a lower "
                f"learning rate (now {lr:g}; try {lr / 4:g}), a smaller noise offset, or "
                "min-SNR weighting on.")

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> Outcome:
        """Train to the end; raises JobCancelled (after saving) when asked to stop."""
        try:
            return self._run()
        except torch.cuda.OutOfMemoryError:
            pass  # leave the except block first so its traceback frees the tensors
        self.release()
        raise OutOfMemory(self._oom_message())

    def _oom_message(self) -> str:
        cfg = self.cfg
        hints = [f"batch size (now {cfg.batch_size})",
                 f"resolution (now {cfg.resolution_for(self.spec.family)} px)",
                 f"rank (now {cfg.rank})"]
        if not cfg.gradient_checkpointing:
            hints.append("or turn on gradient checkpointing")
        if cfg.train_text_encoder:
            hints.append("or stop training the text encoder")
        return (f"The GPU ran out of memory at step {self.step + 1}. Lower the "
                + ", ".join(hints) + ". The memory was freed; earlier checkpoints are kept.")

    def _run(self) -> Outcome:
        cfg, total = self.cfg, self.total_steps
        metrics = ((self.spec.run_dir / "metrics.jsonl").open("a", encoding="utf-8")
                   if self.processes.main else None)
        self.session_t0 = session_t0 = time.monotonic()
        self.clock.tick(self.step, session_t0)
        train_time, session_steps = 0.0, 0
        self.denoiser.train()
        try:
            while self.step < total:
                if self._stop_asked():
                    self._stop()
                t0 = time.monotonic()
                loss = self.train_step(self.step)
                self.step += 1
                train_time += time.monotonic() - t0
                session_steps += 1
                self._log(metrics, loss, session_steps / max(train_time, 1e-9),
                          time.monotonic() - session_t0)
                if cfg.sample_every and self.step % cfg.sample_every == 0 and self.step < total:
                    self._sample()
                if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 \
                        and self.step < total:
                    self._checkpoint()
        finally:
            if metrics is not None:
                metrics.close()
        if self.processes.main:
            self._sample()
            self._export()
        return Outcome(self.step, total, self.cache.stats.hits, self.cache.stats.misses)

    def _stop(self) -> None:
        if self.step > self.last_saved and self.processes.main:
            self._checkpoint()
        where = f"step {self.step}" if self.step else "the start"
        raise JobCancelled(f"{self._why_stopped()} at {where}; a checkpoint was saved, so "
                           "Resume continues from here.")

    def _why_stopped(self) -> str:
        over = getattr(self.reporter, "over_time", False)  # a public demo's time limit
        return "Stopped by the demo's time limit" if over else "Cancelled"

    def _log(self, handle, loss: float, steps_per_s: float, session_s: float) -> None:
        self.ema = SMOOTHING * self.ema + (1 - SMOOTHING) * loss
        self.ema_n += 1
        smooth = self.ema / (1 - SMOOTHING ** self.ema_n)
        self.clock.tick(self.step)
        eta = self.clock.eta(self.total_steps - self.step)
        if handle is None:  # a process that does not write
            return
        lr = float(self.lr_scheduler.get_last_lr()[0])
        row = {"step": self.step, "loss": loss, "loss_smooth": smooth, "lr": lr,
               "steps_per_s": steps_per_s, "eta_s": eta,
               "time": round(self.elapsed_before + session_s, 3)}
        handle.write(json.dumps(row) + "\n")
        handle.flush()
        eta_text = f" · about {format_duration(eta)} left" if eta is not None else ""
        self.reporter.progress(self.step / self.total_steps,
                               f"Step {self.step}/{self.total_steps} · loss {smooth:.4f}"
                               f"{eta_text}", phase="training", run_id=self.spec.run_id,
                               step=self.step, total_steps=self.total_steps, loss=loss,
                               loss_smooth=smooth, lr=lr, eta_s=eta,
                               steps_per_s=steps_per_s)

    def _status(self, message: str) -> None:
        self.reporter.progress(0.0, message, phase="preparing", run_id=self.spec.run_id)

    def _sample(self) -> None:
        if not self.processes.main or not self.samples.prompts:
            return
        self.denoiser.eval()
        try:
            self.samples.write(self.step, self.spec.run_id)
        finally:
            self.denoiser.train()

    def _state(self) -> dict[str, torch.Tensor]:
        models = {k: self.accelerator.unwrap_model(m) for k, m in self.models.items()}
        state = lora_state(models)
        if not all_finite(state):
            raise TrainingDiverged(self._diverged_message(self.step, float("nan")))
        return state

    def _checkpoint(self) -> None:
        if not self.processes.main:
            return
        state = self._state()
        session_s = time.monotonic() - self.session_t0
        extra = {"ema": self.ema, "ema_n": self.ema_n, "total_steps": self.total_steps,
                 "elapsed_s": self.elapsed_before + session_s}
        training = TrainingState(self.step, state, self.optimizer.state_dict(),
                                 self.lr_scheduler.state_dict(),
                                 self.generator.get_state().cpu(), extra)

        def fill(folder: Path) -> None:
            write_diffusers(folder / DIFFUSERS_NAME, state, self.configs,
                            self._metadata("diffusers", self.step))
            write_training_state(folder / STATE_DIR, training)

        try:
            self.checkpoints.write(self.step, fill, self.cfg.keep_checkpoints)
        except OSError as exc:
            raise SaveFailed(f"Could not save the checkpoint at step {self.step} ({exc}). "
                             "The earlier checkpoints are intact; free some disk space and "
                             "press Resume.") from exc
        self.last_saved = self.step
        if self.spec.on_checkpoint:
            self.spec.on_checkpoint(self.step)

    def _metadata(self, fmt: str, step: int | None) -> dict[str, Any]:
        """The run's provenance plus what only the loaded model knows: its objective."""
        objective = ("flow" if self.flow is not None
                     else self.noise_scheduler.config.prediction_type)
        assert self.spec.metadata is not None  # the main process's spec has it
        return {**self.spec.metadata(fmt, step), "modelspec.prediction_type": objective}

    def _export(self) -> None:
        state = self._state()
        kohya = self._tool_state(state)

        def fill(folder: Path) -> None:
            write_diffusers(folder / DIFFUSERS_NAME, state, self.configs,
                            self._metadata("diffusers", None))
            write_kohya(folder / self.spec.kohya_name, kohya, self._metadata("kohya", None))

        try:
            replace_folder(self.spec.run_dir / "lora", fill)
        except OSError as exc:
            raise SaveFailed(f"Could not write the finished LoRA ({exc}). The checkpoints are "
                             "intact; free some disk space and press Resume.") from exc

    def _tool_state(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The file other tools load: kohya names for the UNets, ComfyUI's for the rest."""
        alphas = {name: float(config.lora_alpha) for name, config in self.configs.items()}
        denoiser = self.accelerator.unwrap_model(self.denoiser)
        if self.flow is not None:
            return tool_state(self.spec.family, state, alphas["transformer"], self.cfg.rank,
                              denoiser.config)
        return kohya_state(state, alphas, self.spec.family,
                           int(denoiser.config.layers_per_block))

    def release(self) -> None:
        """Drop every model and tensor so the device memory returns to the pool."""
        for name in ("pipe", "denoiser", "optimizer", "lr_scheduler", "examples", "models",
                     "params", "text", "samples", "accelerator", "empty_text"):
            self.__dict__.pop(name, None)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
