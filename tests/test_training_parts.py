"""Training's parts without training: settings, buckets, batch order, names, cards, energy."""

from __future__ import annotations

import time

import pytest
import torch
from huggingface_hub import ModelCard
from PIL import Image

from style_studio.base.errors import InvalidInput
from style_studio.training.checkpoints import CheckpointFolder
from style_studio.training.config import TrainConfig
from style_studio.training.data import (
    BatchOrder,
    bucket_sizes,
    choose_bucket,
    fit_to_bucket,
    training_caption,
)
from style_studio.training.energy import EnergyMeter, EnergyReport
from style_studio.training.export import clip_module, kohya_state, sgm_module
from style_studio.training.provenance import hf_licence, model_card


def test_presets_differ_and_validate():
    quick, balanced, fine = (TrainConfig.preset(n) for n in ("quick", "balanced", "fine"))
    assert quick.max_steps < balanced.max_steps < fine.max_steps
    assert quick.rank < balanced.rank < fine.rank
    assert fine.targets == "attention+ff"
    for config in (quick, balanced, fine):
        assert config.validate() is config
    assert TrainConfig.preset("Fine detail").preset_name == "fine"
    assert TrainConfig.preset("quick", rank=4).rank == 4


def test_unknown_preset_names_the_choices():
    with pytest.raises(InvalidInput, match="Quick draft"):
        TrainConfig.preset("turbo")


def test_validation_lists_every_bad_setting_in_words():
    config = TrainConfig(rank=0, learning_rate=5.0, resolution=500, batch_size=0,
                         optimizer="lion", caption_dropout=0.95)
    with pytest.raises(InvalidInput) as error:
        config.validate()
    text = str(error.value)
    for words in ("rank must be between 1 and 256 (it is 0)", "learning rate",
                  "multiple of 64", "batch size", "optimizer must be one of",
                  "caption dropout"):
        assert words in text


def test_config_round_trips_and_refuses_unknown_keys():
    config = TrainConfig.preset("quick", sample_prompts=["x, a cat"])
    assert TrainConfig.from_dict(config.to_dict()) == config
    with pytest.raises(InvalidInput, match="learning_rat"):
        TrainConfig.from_dict({"learning_rat": 1})


def test_default_sample_prompts_use_the_trigger():
    prompts = TrainConfig().prompts_for("inkwash")
    assert len(prompts) == 3 and all(p.startswith("inkwash, ") for p in prompts)
    assert TrainConfig(sample_prompts=["my own"]).prompts_for("inkwash") == ["my own"]


def test_steps_from_epochs():
    config = TrainConfig(epochs=3, repeats=2, batch_size=4)
    assert config.total_steps(10) == 3 * 5


def test_training_caption_adds_the_trigger_once():
    assert training_caption("a heron", "inkwash") == "inkwash, a heron"
    assert training_caption("inkwash, a heron", "inkwash") == "inkwash, a heron"
    assert training_caption("A heron in Inkwash style", "inkwash") == "A heron in Inkwash style"
    assert training_caption("inkwashes of herons", "inkwash") == "inkwash, inkwashes of herons"


def test_buckets_keep_area_and_aspect():
    sizes = bucket_sizes(512, 64)
    assert (512, 512) in sizes and (768, 320) in sizes
    for width, height in sizes:
        assert width % 64 == 0 and height % 64 == 0
        assert width * height <= 512 * 512
        assert max(width, height) / min(width, height) <= 3.0 + 1e-9
    assert choose_bucket(1600, 900, sizes) == (640, 384)
    assert choose_bucket(900, 1600, sizes)[1] > choose_bucket(900, 1600, sizes)[0]
    assert choose_bucket(1000, 1000, sizes) == (512, 512)


def test_fit_to_bucket_crops_the_centre():
    image = Image.new("RGB", (200, 100), (255, 0, 0))
    fitted = fit_to_bucket(image, (64, 64))
    assert fitted.pixels.shape == (3, 64, 64)
    assert fitted.original_size == (100, 200)
    assert fitted.crop_top_left == (0, 32)
    assert torch.allclose(fitted.pixels[0], torch.ones(64, 64))


def test_batch_order_is_a_function_of_seed_and_epoch():
    buckets = [(64, 64)] * 5 + [(96, 48)] * 3
    order = BatchOrder(buckets, batch_size=2, repeats=1, seed=3)
    assert order.steps_per_epoch == 3 + 2
    again = BatchOrder(buckets, batch_size=2, repeats=1, seed=3)
    assert [order.batch_at(s) for s in range(12)] == [again.batch_at(s) for s in range(12)]
    for step in range(12):
        _, batch = order.batch_at(step)
        assert len({buckets[i] for i in batch}) == 1  # never mixes sizes
    epoch0 = sorted(i for b in order.epoch(0) for i in b)
    assert epoch0 == list(range(8))  # each image once per epoch
    assert order.epoch(0) != order.epoch(1)
    assert BatchOrder(buckets, 2, 1, seed=4).epoch(0) != order.epoch(0)


def test_sgm_names_of_real_sdxl_modules():
    assert sgm_module("down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q", 2) == \
        "input_blocks.4.1.transformer_blocks.0.attn1.to_q"
    assert sgm_module("down_blocks.2.attentions.1.proj_in", 2) == "input_blocks.8.1.proj_in"
    assert sgm_module("mid_block.attentions.0.transformer_blocks.3.ff.net.2", 2) == \
        "middle_block.1.transformer_blocks.3.ff.net.2"
    assert sgm_module("up_blocks.0.attentions.2.proj_out", 2) == "output_blocks.2.1.proj_out"
    assert sgm_module("up_blocks.1.resnets.1.conv1", 2) == "output_blocks.4.0.in_layers.2"
    assert sgm_module("mid_block.resnets.1.conv2", 2) == "middle_block.2.out_layers.3"


def test_kohya_keys_shapes_and_alpha():
    state = {"unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight":
             torch.zeros(4, 64),
             "unet.down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight":
             torch.zeros(64, 4),
             # transformers 5: CLIPTextModel has no `text_model.` level, the one with
             # projection keeps it; sd-scripts' names have it for both
             "text_encoder.encoder.layers.0.self_attn.q_proj.lora_A.weight":
             torch.zeros(4, 32),
             "text_encoder_2.text_model.encoder.layers.1.mlp.fc1.lora_B.weight":
             torch.zeros(37, 4)}
    alphas = {"unet": 8.0, "text_encoder": 4.0, "text_encoder_2": 4.0}
    sd15 = kohya_state(state, alphas, "sd15", 1)
    name = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_q"
    assert sd15[f"{name}.lora_down.weight"].shape == (4, 64)
    assert sd15[f"{name}.lora_up.weight"].shape == (64, 4)
    assert float(sd15[f"{name}.alpha"]) == 8.0
    assert "lora_te_text_model_encoder_layers_0_self_attn_q_proj.alpha" in sd15
    sdxl = kohya_state(state, alphas, "sdxl", 2)
    assert "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight" in sdxl
    assert "lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight" in sdxl
    assert "lora_te2_text_model_encoder_layers_1_mlp_fc1.lora_up.weight" in sdxl
    assert clip_module("text_projection") == "text_projection"


def _manifest(licences: dict[str, int]) -> dict:
    return {"style": {"name": "Ink", "trigger": "inkwash", "family": "sd15"},
            "base_model": {"ref": "tiny-sd15", "identity": "tiny-sd15@seed0"},
            "image_count": 2, "creators": ["Ana"], "licences": licences, "obligations": [],
            "seed": 1, "device": "CPU", "created_at": "2025-01-01T00:00:00+00:00"}


def test_model_card_front_matter_parses():
    text = model_card(_manifest({"LicenseRef-OwnWork": 2}), "ab" * 32,
                      kohya_name="ink.kohya.safetensors",
                      samples=[("inkwash, a cat", "samples/step-000010-0.png")])
    card = ModelCard(text)
    assert card.data.base_model == "tiny-sd15"
    assert card.data.license == "other"
    assert card.data.instance_prompt == "inkwash"
    assert "lora" in card.data.tags
    assert card.data.widget[0]["output"]["url"] == "samples/step-000010-0.png"
    assert "ab" * 32 in card.text


def test_share_alike_and_non_commercial_carry_over_to_the_card():
    assert hf_licence(_manifest({"CC-BY-SA-4.0": 1, "LicenseRef-OwnWork": 1})) == "cc-by-sa-4.0"
    assert hf_licence(_manifest({"CC-BY-NC-4.0": 1})) == "cc-by-nc-4.0"
    assert hf_licence(_manifest({"CC0-1.0": 1})) == "other"


def test_cpu_energy_is_labelled_an_estimate():
    meter = EnergyMeter("cpu", "CPU")
    # Busy for 50 ms of this process's CPU time: the meter reads the kernel's CPU time in
    # 10 ms ticks, and a fixed loop (7.5 ms in CI with two test processes) could read 0.
    start = time.process_time()
    while time.process_time() - start < 0.05:
        sum(i * i for i in range(20_000))
    report = meter.stop()
    assert report.estimated and "estimate" in report.method
    assert report.wall_s > 0 and report.energy_wh > 0
    total = report.plus(EnergyReport(10.0, "CPU", 1.0, True, report.method))
    assert total.wall_s == pytest.approx(report.wall_s + 10.0)
    assert "estimate: assumed" in total.summary()


def test_checkpoint_folder_ignores_half_written_ones(tmp_path):
    folder = CheckpointFolder(tmp_path)

    def fill(path):
        (path / "training_state").mkdir()
        (path / "training_state" / "state.json").write_text("{}")

    for step in (2, 4, 6):
        folder.write(step, fill, keep=2)
    assert folder.steps() == [4, 6]
    (folder.root / ".step-000009.crash.tmp").mkdir()
    (folder.root / "step-000010").mkdir()  # no state: not complete
    assert folder.latest() == 6

    def broken(path):
        (path / "partial").write_text("half")
        raise OSError("No space left on device")

    with pytest.raises(OSError):
        folder.write(8, broken, keep=2)
    assert folder.steps() == [4, 6]
    assert not list(folder.root.glob(".step-000008.*.tmp"))  # temp removed


def test_training_form_round_trips_and_marks_custom_settings():
    from style_studio.ui.training_views import config_from_form, field_values

    quick = TrainConfig.preset("quick", sample_prompts=["inkwash, a cat"])
    values = field_values(quick)
    assert config_from_form("quick", values) == quick
    values[0] = 250.0  # steps typed in the form arrive as floats
    changed = config_from_form("quick", values)
    assert changed.max_steps == 250 and changed.preset_name == "custom"
    values[4] = 0  # rank
    with pytest.raises(InvalidInput, match="rank must be between 1 and 256"):
        config_from_form("quick", values)


def test_the_style_chart_says_so_while_it_holds_one_point():
    """A line needs two points: a run sampled only at its end drew an empty-looking chart
    with one axis tick, "4.000000". It spans the run and says what the one point is."""
    from style_studio.ui.training_views import style_plot_update

    assert style_plot_update([], 400)["value"] is None
    one = style_plot_update([{"step": 4, "style_distance": 0.6942}], 4)
    assert one["show_label"] and one["x_lim"] == [0, 4]
    assert "Sampled once so far (step 4: distance 0.69)" in one["label"]
    two = style_plot_update([{"step": 200, "style_distance": 0.7},
                             {"step": 400, "style_distance": 0.5}], 400)
    assert not two["show_label"] and list(two["value"]["step"]) == [200, 400]
