"""kohya text-encoder names as sd-scripts writes them, checked against a real CLIP model.

ComfyUI, A1111 and sd-scripts look text-encoder LoRA modules up by the names sd-scripts
gives them: `lora_te_` (SDXL: `lora_te1_` / `lora_te2_`) + the module path in the
original CLIP layout (`text_model.encoder.layers.0.self_attn.q_proj`), dots to
underscores. transformers 5's `CLIPTextModel` has no `text_model.` level, and a
diffusers round trip maps a wrong name back, so the expected names are derived here
from the real modules and the rule, never written by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from training_helpers import make_trainable_style, tiny_config

from style_studio.models.devices import pick_device
from style_studio.models.loading import load_pipeline
from style_studio.models.tiny import build_tiny_components
from style_studio.studio import Studio
from style_studio.training.export import DIFFUSERS_NAME

# sd-scripts (networks/lora.py): LoRA goes on the Linear children of these modules
SD_SCRIPTS_TE_MODULES = ("CLIPAttention", "CLIPSdpaAttention", "CLIPMLP")
KOHYA_TE_PREFIX = {"sd15": {"text_encoder": "lora_te"},
                   "sdxl": {"text_encoder": "lora_te1", "text_encoder_2": "lora_te2"}}


def original_layout(encoder: torch.nn.Module) -> torch.nn.Module:
    """The encoder as transformers 4 / sd-scripts lay it out: the text tower at `text_model`.

    transformers 5's `CLIPTextModel` is the tower itself; `CLIPTextModelWithProjection`
    still holds it at `text_model` (next to `text_projection`).
    """
    if isinstance(getattr(encoder, "text_model", None), torch.nn.Module):
        return encoder
    holder = torch.nn.Module()
    holder.text_model = encoder
    return holder


def sd_scripts_names(encoder: torch.nn.Module, prefix: str) -> set[str]:
    """Every LoRA module name sd-scripts would give this text encoder."""
    names = set()
    for name, module in original_layout(encoder).named_modules():
        if type(module).__name__ not in SD_SCRIPTS_TE_MODULES:
            continue
        for child_name, child in module.named_modules():
            if isinstance(child, torch.nn.Linear):
                names.add(f"{prefix}.{name}.{child_name}".replace(".", "_"))
    return names


def test_the_rule_gives_the_names_the_tools_document():
    """One sanity anchor: the derivation yields sd-scripts' well-known first name."""
    encoder = build_tiny_components("sd15")["text_encoder"]
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj" in sd_scripts_names(
        encoder, "lora_te")


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_trained_text_encoder_keys_are_named_as_sd_scripts_names_them(tmp_path, family):
    with Studio.open(tmp_path / "workspace") as studio:
        style, _ = make_trainable_style(studio, tmp_path, family=family, count=2)
        config = tiny_config(max_steps=1, checkpoint_every=0, train_text_encoder=True)
        job = studio.jobs.wait(studio.training.start(style.id, config,
                                                     base_model=f"tiny-{family}").id, 300)
        assert job.status == "done", job.error
        lora = studio.training.get_run(job.result["run_id"]).run_dir / "lora"
        kohya_file = next(lora.glob("*.kohya.safetensors"))
        kohya = load_file(kohya_file)
        components = build_tiny_components(family)  # the same architecture, from config
        for component, prefix in KOHYA_TE_PREFIX[family].items():
            expected = sd_scripts_names(components[component], prefix)
            assert expected, component
            written = {k.split(".")[0] for k in kohya if k.startswith(prefix + "_")}
            assert written, f"no {prefix}_ keys in the kohya file"
            assert written <= expected, sorted(written - expected)[:5]
            layers = components[component].config.num_hidden_layers
            for layer in range(layers):  # every layer's attention is trained and named
                assert any(f"_encoder_layers_{layer}_self_attn_" in n for n in written), layer
            for name in written:
                assert {f"{name}.lora_down.weight", f"{name}.lora_up.weight",
                        f"{name}.alpha"} <= set(kohya)
        te_keys = {k for k in kohya if k.startswith("lora_te")}
        named = {p + "_" for p in KOHYA_TE_PREFIX[family].values()}
        assert all(k.startswith(tuple(named)) for k in te_keys), sorted(te_keys)[:5]

        # the diffusers file and the renamed kohya file still load alike in diffusers
        models, device = studio.workspace.models_dir, pick_device("cpu")
        outputs = []
        for source in (lora / DIFFUSERS_NAME, kohya_file):
            pipe = load_pipeline(f"tiny-{family}", family, models, device)
            base = _embed(pipe)
            pipe.load_lora_weights(str(source))
            embedded = _embed(pipe)
            for before, after in zip(base, embedded, strict=True):
                assert not np.array_equal(before, after), f"{source.name}: TE LoRA not loaded"
            outputs.append(embedded)
        for first, second in zip(*outputs, strict=True):
            assert np.abs(first - second).max() < 1e-5


def _embed(pipe) -> list[np.ndarray]:
    """Each text encoder's output for one prompt."""
    encoders = [pipe.text_encoder, getattr(pipe, "text_encoder_2", None)]
    ids = pipe.tokenizer("shapestyle, a house", return_tensors="pt").input_ids
    with torch.no_grad():
        return [encoder(ids)[0].numpy() for encoder in encoders if encoder is not None]
