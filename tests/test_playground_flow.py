"""The Playground with the flow-matching families (FLUX.1, FLUX.2 [klein], Z-Image) on their
tiny twins: LoRA on and off on one cached pipeline, A/B, each pipeline's conventions (steps,
guidance, which negative prompt it reads) and a run from the real trainer played back."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
from playground_fixtures import make_lora_run, one, pixels

from style_studio.models.tiny import TINY_IDS
from style_studio.playground.conventions import conventions_for, prompt_arguments
from style_studio.playground.records import GenerateRequest
from style_studio.studio import family_training

FLOW = ("flux1", "flux2_klein", "zimage")
PROMPT = "inkwash, a heron in reeds"
STEPS = 2


def ask(style, **changes) -> GenerateRequest:
    values = {"prompt": PROMPT, "seed": 7, "steps": STEPS, **changes}
    return GenerateRequest(style_id=style.id, **values)




@pytest.mark.parametrize("family", FLOW)
def test_a_flow_lora_is_switched_on_and_off_on_one_pipeline(studio, family):
    style = studio.styles.create(f"Flow {family}", trigger="inkwash", family=family)
    run_id = make_lora_run(studio, style.id, steps=(10,), family=family)
    guidance = studio.playground.default_request(style.id).guidance
    job = studio.playground.submit_ab(ask(style, run_id=run_id, guidance=guidance))
    assert studio.jobs.wait(job.id, 120).status == "done", studio.jobs.get(job.id).error
    a, b = studio.playground.outputs(job.id)
    assert (a.label, a.settings.run_id, b.label, b.settings.run_id) == ("A", None, "B", run_id)
    assert np.abs(pixels(b) - pixels(a)).mean() > 1  # the LoRA changes the picture

    base_again = one(studio, ask(style, guidance=guidance))
    at_zero = one(studio, ask(style, run_id=run_id, lora_scale=0.0, guidance=guidance))
    assert np.array_equal(pixels(base_again), pixels(a))  # LoRA off: exactly the base
    assert np.array_equal(pixels(at_zero), pixels(a))
    cache = studio.playground.cache
    assert (cache.base_loads, cache.lora_loads) == (1, 1)
    assert b.settings.lora_sha256 and b.settings.base_model == TINY_IDS[family]


def test_the_form_starts_with_each_models_own_steps_and_guidance(studio):
    expected = {"sd15": (20, 7.0), "flux1": (28, 3.5), "flux2_klein": (4, 1.0),
                "zimage": (8, 0.0)}
    for family, (steps, guidance) in expected.items():
        style = studio.styles.create(f"Defaults {family}", family=family)
        request = studio.playground.default_request(style.id)
        assert (request.steps, request.guidance) == (steps, guidance), family
    # A run on a real model takes that model's convention, not its family's.
    for ref, family, want in (("black-forest-labs/FLUX.1-schnell", "flux1", (4, 0.0)),
                              ("black-forest-labs/FLUX.1-dev", "flux1", (28, 3.5)),
                              ("black-forest-labs/FLUX.2-klein-base-4B", "flux2_klein",
                               (50, 4.0)),
                              ("Tongyi-MAI/Z-Image-Turbo", "zimage", (8, 0.0)),
                              ("Tongyi-MAI/Z-Image", "zimage", (50, 4.0))):
        conventions = conventions_for(ref, family)
        assert (conventions.steps, conventions.guidance) == want, ref
        assert family_training(family, ref).sample_guidance == want[1]
    style = studio.styles.create("Schnell", family="flux1")
    run_id = make_lora_run(studio, style.id, steps=(10,), family="flux1",
                           base="black-forest-labs/FLUX.1-schnell")
    assert studio.playground.conventions(style.id, run_id).steps == 4
    assert studio.playground.conventions(style.id).steps == 28  # the style's tiny twin
    # A request that leaves steps and guidance unset (a script) gets the model's own.
    turbo = studio.styles.create("Turbo", family="zimage")
    made = one(studio, GenerateRequest(style_id=turbo.id, prompt=PROMPT, seed=1))
    assert (made.settings.steps, made.settings.guidance) == (8, 0.0)


def test_only_pipelines_that_read_a_negative_prompt_are_given_one():
    never, sometimes, always = (conventions_for(TINY_IDS[f], f)
                                for f in ("flux2_klein", "zimage", "sd15"))
    assert prompt_arguments(never, "p", "blurry", 4.0) == ({"prompt": "p"}, "")
    assert prompt_arguments(sometimes, "p", "blurry", 0.0) == (
        {"prompt": "p", "negative_prompt": None}, "")
    assert prompt_arguments(sometimes, "p", "blurry", 3.0) == (
        {"prompt": "p", "negative_prompt": "blurry"}, "blurry")
    assert prompt_arguments(always, "p", "", 7.0) == ({"prompt": "p", "negative_prompt": None},
                                                      "")


def test_a_negative_prompt_is_recorded_only_where_it_was_read(studio):
    klein = studio.styles.create("Klein", family="flux2_klein")
    flux = studio.styles.create("Flux", family="flux1")
    for style in (klein, flux):  # klein's pipeline would raise on a negative_prompt
        output = one(studio, ask(style, negative_prompt="blurry", guidance=1.0))
        assert output.settings.negative_prompt == ""
    zimage = studio.styles.create("Z", family="zimage")
    turbo = one(studio, ask(zimage, negative_prompt="blurry", guidance=0.0))
    assert turbo.settings.negative_prompt == ""
    plain = one(studio, ask(zimage, guidance=3.0))
    guided = one(studio, ask(zimage, negative_prompt="blurry", guidance=3.0))
    assert guided.settings.negative_prompt == "blurry"
    assert not np.array_equal(pixels(guided), pixels(plain))  # CFG really used it


def test_flow_families_offer_no_text_encoder_training_and_their_own_targets():
    sd, flux = family_training("sd15"), family_training("flux1")
    assert sd.text_encoder and sd.target_presets and sd.min_snr
    assert not (flux.text_encoder or flux.target_presets or flux.min_snr)
    assert "add_q_proj" in flux.default_targets and flux.family_label == "FLUX.1"


def test_a_flux1_run_trained_by_the_real_trainer_plays_back(studio, tmp_path):
    """The contract end to end: whatever the trainer writes for FLUX.1, the A/B loads."""
    from training_helpers import make_trainable_style, tiny_config

    trained, _ = make_trainable_style(studio, tmp_path, family="flux1", count=3)
    job = studio.training.start(trained.id, tiny_config(max_steps=4, learning_rate=5e-2,
                                                        min_snr_gamma=0.0))
    assert studio.jobs.wait(job.id, 300).status == "done", studio.jobs.get(job.id).error
    run = studio.training.runs(trained.id)[0]
    request = ask(trained, prompt="shapestyle, a house", run_id=run.id, guidance=3.5)
    ab = studio.jobs.wait(studio.playground.submit_ab(request).id, 120)
    assert ab.status == "done", ab.error
    a, b = studio.playground.outputs(ab.id)
    assert not np.array_equal(pixels(a), pixels(b))
    assert b.settings.manifest_sha256 == run.manifest_sha256 != ""
