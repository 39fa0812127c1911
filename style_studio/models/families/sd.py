"""Stable Diffusion 1.x and SDXL: UNet, epsilon (or v) prediction, CLIP text encoders."""

from __future__ import annotations

from diffusers import DiffusionPipeline

from style_studio.models.tiny import build_tiny_pipeline

from .spec import FamilySpec, ReferenceModel

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def _tiny_sd15(seed: int = 0) -> DiffusionPipeline:
    return build_tiny_pipeline("sd15", seed)


def _tiny_sdxl(seed: int = 0) -> DiffusionPipeline:
    return build_tiny_pipeline("sdxl", seed)


SD15 = FamilySpec(
    key="sd15", label="Stable Diffusion 1.x", pipeline="StableDiffusionPipeline",
    denoiser="unet", objective="epsilon", native_side=512, latent_packing=False,
    text_encoders=("CLIPTextModel",), caption_token_limit=77, default_targets=UNET_TARGETS,
    references=(ReferenceModel("stable-diffusion-v1-5/stable-diffusion-v1-5",
                               "Stable Diffusion 1.5", "creativeml-openrail-m", True, 6.0),),
    build_tiny=_tiny_sd15, trainable=True)

SDXL = FamilySpec(
    key="sdxl", label="Stable Diffusion XL", pipeline="StableDiffusionXLPipeline",
    denoiser="unet", objective="epsilon", native_side=1024, latent_packing=False,
    text_encoders=("CLIPTextModel", "CLIPTextModelWithProjection"), caption_token_limit=77,
    default_targets=UNET_TARGETS,
    references=(ReferenceModel("stabilityai/stable-diffusion-xl-base-1.0", "SDXL 1.0 base",
                               "openrail++", True, 12.0),),
    build_tiny=_tiny_sdxl, trainable=True)
