"""What the page says about the flow families, without a browser: the families offered,
each real model's licence terms, the Training tab's fields a flow family cannot use, and
the Playground's conventions line."""

from __future__ import annotations

from style_studio.models.families import FAMILIES
from style_studio.playground.conventions import conventions_for
from style_studio.studio import TRAINABLE_FAMILIES, TrainConfig, family_training
from style_studio.ui.playground_tab import conventions_markdown
from style_studio.ui.styles_panel import FAMILY_CHOICES, family_models
from style_studio.ui.training_tab import family_fields
from style_studio.ui.training_views import (
    ADVANCED_FIELDS,
    base_model_choices,
    config_from_form,
    field_values,
)


def test_only_trainable_families_are_offered():
    offered = {key for _, key in FAMILY_CHOICES}
    assert offered == {key for key, spec in FAMILIES.items() if spec.trainable}
    assert offered == set(TRAINABLE_FAMILIES) and "flux1" in offered
    assert ("FLUX.1", "flux1") in FAMILY_CHOICES


def test_base_models_show_licence_commercial_use_and_training_memory(studio):
    labels = dict((ref, label) for label, ref in base_model_choices(studio, "flux1"))
    assert "non-commercial · ~24 GB to train" in labels["black-forest-labs/FLUX.1-dev"]
    assert "Apache-2.0 · commercial use OK" in labels["black-forest-labs/FLUX.1-schnell"]
    assert labels["tiny-flux1"].startswith("Tiny random model")  # no licence to claim
    terms = studio.base_model_terms("black-forest-labs/FLUX.1-dev", "flux1")
    assert "**non-commercial**: LoRAs and images made with it may not be used" in terms
    klein = studio.base_model_terms("black-forest-labs/FLUX.2-klein-4B", "flux2_klein")
    assert "third-party pages" in klein  # an unverified figure says so
    text = family_models(studio, "flux1")
    assert "FLUX.1 [dev]" in text and "not on this machine" in text
    assert family_models(studio, "sd15").count("- **") == 1  # SD 1.5; the tiny has no terms


def test_the_training_form_turns_off_what_a_flow_family_cannot_use():
    note, targets, text_encoder, min_snr, steps = family_fields(family_training("flux1"))
    assert "FLUX.1** trains its LoRA on the layers its own format uses (to_q" in note
    assert targets["interactive"] is False and "its own targets" in targets["info"]
    assert (text_encoder["value"], text_encoder["interactive"]) == (False, False)
    assert min_snr["interactive"] is False and steps["value"] == 28
    sd = family_fields(family_training("sd15"))
    assert sd[0] == "" and sd[1]["interactive"] and sd[4]["value"] == 20

    # The preset stays the artist's choice when only the sampling differs; a flow base's
    # guidance goes into the run, and the text encoder is never trained for it.
    values = field_values(TrainConfig.preset("quick"))
    values[ADVANCED_FIELDS.index("sample_steps")] = 28
    config = config_from_form("quick", values, sample_guidance=3.5, text_encoder=False)
    assert (config.preset_name, config.sample_guidance, config.train_text_encoder) == (
        "quick", 3.5, False)
    # A number field sends 28.0; the pipeline needs a whole number of steps. An emptied
    # field means the base model's own (resolved when the run starts), not an error.
    values[ADVANCED_FIELDS.index("sample_steps")] = 28.0
    assert config_from_form("quick", values).sample_steps == 28
    assert isinstance(config_from_form("quick", values).sample_steps, int)
    values[ADVANCED_FIELDS.index("sample_steps")] = ""
    assert config_from_form("quick", values).sample_steps is None


def test_the_playground_says_what_guidance_means_and_hides_an_unread_negative():
    text = conventions_markdown("tiny-flux1", conventions_for("tiny-flux1", "flux1"))
    assert "28 steps at guidance 3.5" in text and "distilled guidance" in text
    assert "no negative prompt" in text
    zimage = conventions_markdown("Tongyi-MAI/Z-Image-Turbo",
                                  conventions_for("Tongyi-MAI/Z-Image-Turbo", "zimage"))
    assert "8 steps at guidance 0" in zimage and "only while guidance is above 0" in zimage
    sd = conventions_markdown("tiny-sd15", conventions_for("tiny-sd15", "sd15"))
    assert "classifier-free guidance" in sd and "negative" not in sd
