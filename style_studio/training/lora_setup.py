"""Putting LoRA adapters on a pipeline and building what trains them.

Plain functions the trainer (and the benchmark) share: which layers get adapters,
which weights train in fp32, the optimizer with its per-model learning rates, the LR
schedule, and copying a saved LoRA back into the adapters for a resume.
"""

from __future__ import annotations

import torch
from diffusers.optimization import get_scheduler
from peft import LoraConfig

from style_studio.base.errors import InvalidInput
from style_studio.models.devices import DeviceChoice

from .config import TARGETS, TEXT_ENCODER_TARGETS, TrainConfig

Models = dict[str, torch.nn.Module]  # "unet" | "transformer", "text_encoder", "text_encoder_2"
DENOISERS = ("unet", "transformer")


def precision(config: TrainConfig, device: DeviceChoice) -> str:
    """accelerate's mixed-precision mode for this device."""
    if not device.device.startswith("cuda"):
        return "no"  # CPU and MPS train in fp32; autocast there is slower or unsupported
    if config.mixed_precision == "auto":
        return "bf16" if device.dtype == torch.bfloat16 else "fp16"
    return config.mixed_precision


def _lora(config: TrainConfig, targets: tuple[str, ...]) -> LoraConfig:
    return LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                      target_modules=list(targets))


def add_adapters(model: torch.nn.Module, encoders: list[torch.nn.Module],
                 frozen: list[torch.nn.Module], config: TrainConfig,
                 denoiser: str = "unet", targets: tuple[str, ...] | None = None
                 ) -> tuple[dict[str, LoraConfig], Models]:
    """Freeze everything, add LoRA to the denoiser (and the text encoders if asked).
    `denoiser` names it in the files ("unet", or "transformer" for the flow families,
    whose LoRA targets come from their family instead of the UNet presets)."""
    for module in [model, *encoders, *frozen]:
        module.requires_grad_(False)
    torch.manual_seed(config.seed)  # LoRA's gaussian init draws from the global RNG
    configs = {denoiser: _lora(config, targets or TARGETS[config.targets])}
    model.add_adapter(configs[denoiser])
    models: Models = {denoiser: model}
    if config.train_text_encoder:
        names = ["text_encoder", "text_encoder_2"][:len(encoders)]
        for name, encoder in zip(names, encoders, strict=True):
            configs[name] = _lora(config, TEXT_ENCODER_TARGETS)
            encoder.add_adapter(configs[name])
            models[name] = encoder
    for adapted in models.values():  # trainable LoRA weights in fp32; the base stays low
        for param in adapted.parameters():
            if param.requires_grad:
                param.data = param.data.float()
    if config.gradient_checkpointing:
        model.enable_gradient_checkpointing()
        for name, encoder in models.items():
            if name not in DENOISERS:
                encoder.gradient_checkpointing_enable()
    return configs, models


def make_optimizer(models: Models, config: TrainConfig, total_steps: int):
    """(optimizer, LR scheduler, trainable params); text encoders get their own LR."""
    groups = [{"params": [p for p in model.parameters() if p.requires_grad],
               "lr": config.learning_rate if name in DENOISERS else config.text_encoder_lr}
              for name, model in models.items()]
    params = [p for group in groups for p in group["params"]]
    if config.optimizer == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=config.learning_rate,
                                      weight_decay=config.weight_decay)
    elif config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        optimizer = Adafactor(groups, lr=config.learning_rate, weight_decay=config.weight_decay,
                              scale_parameter=False, relative_step=False, warmup_init=False)
    else:
        optimizer = torch.optim.SGD(groups, lr=config.learning_rate, momentum=0.9,
                                    weight_decay=config.weight_decay)
    scheduler = get_scheduler(config.lr_scheduler, optimizer,
                              num_warmup_steps=config.lr_warmup_steps,
                              num_training_steps=total_steps)
    return optimizer, scheduler, params


def restore_lora(models: Models, state: dict[str, torch.Tensor]) -> None:
    """Copy a saved LoRA (prefixed PEFT keys) into the adapters, exactly."""
    wanted = dict(state)
    for prefix, model in models.items():
        for name, param in model.named_parameters():
            if "lora_" in name:
                key = f"{prefix}.{name.replace('.default', '')}"
                if key not in wanted:
                    raise InvalidInput(f"The checkpoint has no weights for {key}; it belongs "
                                       "to different settings. Start a new run.")
                with torch.no_grad():
                    param.copy_(wanted.pop(key).to(param.device, param.dtype))
    if wanted:
        raise InvalidInput("The checkpoint does not match this run's LoRA layout "
                           f"({len(wanted)} unexpected tensors); start a new run.")
