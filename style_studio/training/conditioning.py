"""What the UNet is conditioned on: text embeddings (one or two CLIP encoders) and,
for SDXL, the size/crop "time ids".

Kept in one place so the latent cache, the trainer and the benchmark's reference loop
encode a caption exactly the same way the diffusers pipelines do.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline


@dataclass
class TextEmbedding:
    """Per-token embeddings (batch, tokens, dim) and, for SDXL, the pooled vector."""

    embeds: torch.Tensor
    pooled: torch.Tensor | None = None


class TextConditioner:
    """Tokenize and encode captions like StableDiffusion(XL)Pipeline.encode_prompt."""

    def __init__(self, pipe: DiffusionPipeline, family: str):
        self.family = family
        self.tokenizers = [pipe.tokenizer]
        self.encoders = [pipe.text_encoder]
        if family == "sdxl":
            self.tokenizers.append(pipe.tokenizer_2)
            self.encoders.append(pipe.text_encoder_2)

    def token_ids(self, captions: list[str]) -> list[torch.Tensor]:
        return [tok(captions, padding="max_length", truncation=True,
                    max_length=tok.model_max_length, return_tensors="pt").input_ids
                for tok in self.tokenizers]

    def encode(self, captions: list[str], device: torch.device | str) -> TextEmbedding:
        """Gradients flow when a text-encoder LoRA trains; wrap in no_grad otherwise."""
        ids = self.token_ids(captions)
        if self.family == "sd15":
            return TextEmbedding(self.encoders[0](ids[0].to(device))[0])
        parts, pooled = [], None
        for encoder, token_ids in zip(self.encoders, ids, strict=True):
            out = encoder(token_ids.to(device), output_hidden_states=True)
            pooled = out[0]  # the last encoder's projected pooled output, as SDXL uses
            parts.append(out.hidden_states[-2])
        return TextEmbedding(torch.cat(parts, dim=-1), pooled)


def time_ids(original_size: tuple[int, int], crop_top_left: tuple[int, int],
             target_size: tuple[int, int]) -> torch.Tensor:
    """SDXL's micro-conditioning: (orig h, orig w, crop top, crop left, target h, target w)."""
    return torch.tensor([*original_size, *crop_top_left, *target_size], dtype=torch.float32)
