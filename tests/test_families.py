"""The family registry: every family's tiny twin is a real pipeline of that family, built
offline, that survives `save_pretrained`/`from_pretrained`, and whose declared LoRA
targets exist and change its pictures. Only the families the trainer supports are offered."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline
from peft import LoraConfig

from style_studio.base.errors import InvalidInput
from style_studio.base.family import FAMILY_LABELS
from style_studio.models.families import FAMILIES, family_spec
from style_studio.models.tokenizer_assets import build_qwen_tokenizer, build_t5_tokenizer

PROMPT = "a lighthouse on a rocky coast, ink wash"
CALL = {"flux1": {"guidance_scale": 3.5, "max_sequence_length": 32},
        "flux2_klein": {"guidance_scale": 1.0, "max_sequence_length": 64},
        "zimage": {"guidance_scale": 0.0, "max_sequence_length": 64}}


def _draw(pipe, key: str, side: int = 32) -> np.ndarray:
    extra = CALL.get(key, {"guidance_scale": 1.0})
    out = pipe(prompt=PROMPT, height=side, width=side, num_inference_steps=2,
               generator=torch.Generator().manual_seed(0), output_type="np", **extra)
    return np.asarray(out.images[0], dtype=np.float32)


@pytest.mark.parametrize("key", [k for k, spec in FAMILIES.items() if spec.flow])
def test_a_flow_familys_tiny_twin_runs_reloads_and_takes_its_lora_targets(key, tmp_path):
    spec = family_spec(key)
    pipe = spec.build_tiny(0)
    assert type(pipe).__name__ == spec.pipeline
    first = _draw(pipe, key)
    assert first.shape == (32, 32, 3) and np.isfinite(first).all()
    pipe.save_pretrained(tmp_path / key, safe_serialization=True)
    again = DiffusionPipeline.from_pretrained(tmp_path / key)
    again.set_progress_bar_config(disable=True)
    assert type(again).__name__ == spec.pipeline
    assert np.allclose(_draw(again, key), first, atol=1e-5)

    denoiser = getattr(again, spec.denoiser)
    linear = [name for name, module in denoiser.named_modules()
              if isinstance(module, torch.nn.Linear)]
    for target in spec.default_targets:
        assert any(name == target or name.endswith("." + target) for name in linear), target
    torch.manual_seed(1)
    denoiser.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights="gaussian",
                                    target_modules=list(spec.default_targets)))
    for name, param in denoiser.named_parameters():
        if "lora_B" in name:  # gaussian init leaves B at zero: give the LoRA an effect
            param.data.normal_(0, 0.5)
    assert np.abs(_draw(again, key) - first).mean() > 1e-4


def test_only_trainable_families_are_offered_and_licences_are_plain():
    assert {k for k, spec in FAMILIES.items() if spec.trainable} == set(FAMILY_LABELS)
    assert [ref.hub_id for ref in family_spec("flux1").non_commercial()] == [
        "black-forest-labs/FLUX.1-dev"]
    for spec in FAMILIES.values():
        assert spec.references and all(ref.licence and ref.train_vram_gb > 0
                                       for ref in spec.references)
        assert spec.objective == ("flow_matching" if spec.denoiser == "transformer"
                                  else "epsilon")
    with pytest.raises(InvalidInput, match="Unknown base-model family 'sd3'; known: sd15"):
        family_spec("sd3")


def test_the_offline_t5_and_qwen_tokenizers_know_every_plain_character():
    t5 = build_t5_tokenizer()
    ids = t5(PROMPT).input_ids
    assert ids[-1] == t5.eos_token_id == 1 and t5.unk_token_id not in ids
    qwen = build_qwen_tokenizer()
    text = qwen.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                    add_generation_prompt=True, enable_thinking=False)
    assert text.startswith("<|im_start|>user\n" + PROMPT) and text.endswith("</think>\n\n")
    assert qwen.decode(qwen(PROMPT).input_ids) == PROMPT
