"""One trainer step equals the diffusers example's step on identical tensors.

The reference below is written the way diffusers' `examples/text_to_image/
train_text_to_image_lora.py` writes its loop (target by prediction type, min-SNR weights
stacked and divided by SNR or SNR + 1, MSE per sample), not from the trainer's code.
It runs on the tiny SD 1.x model (epsilon, min-SNR 5) and on the toy model (v-prediction
on a zero-terminal-SNR schedule, min-SNR off), with the same latents, caption, noise
and timesteps the trainer draws for its first step.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from diffusers.training_utils import compute_snr
from training_helpers import Quiet, make_trainable_style, tiny_config

from style_studio.models.toy import TOY_ID
from style_studio.studio import Studio
from style_studio.training.trainer import Trainer, TrainSpec


def reference_loss(noise_scheduler, unet, text_encoder, tokenizer, latents, captions,
                   noise, timesteps, snr_gamma):
    """diffusers' train_text_to_image_lora.py, one step's loss."""
    noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)
    inputs = tokenizer(captions, max_length=tokenizer.model_max_length, padding="max_length",
                       truncation=True, return_tensors="pt")
    encoder_hidden_states = text_encoder(inputs.input_ids, return_dict=False)[0]
    if noise_scheduler.config.prediction_type == "epsilon":
        target = noise
    elif noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:
        raise ValueError(noise_scheduler.config.prediction_type)
    model_pred = unet(noisy_latents, timesteps, encoder_hidden_states, return_dict=False)[0]
    if snr_gamma is None:
        return F.mse_loss(model_pred.float(), target.float(), reduction="mean")
    snr = compute_snr(noise_scheduler, timesteps)
    mse_loss_weights = torch.stack([snr, snr_gamma * torch.ones_like(timesteps)],
                                   dim=1).min(dim=1)[0]
    if noise_scheduler.config.prediction_type == "epsilon":
        mse_loss_weights = mse_loss_weights / snr
    elif noise_scheduler.config.prediction_type == "v_prediction":
        mse_loss_weights = mse_loss_weights / (snr + 1)
    loss = F.mse_loss(model_pred.float(), target.float(), reduction="none")
    loss = loss.mean(dim=list(range(1, len(loss.shape)))) * mse_loss_weights
    return loss.mean()


@pytest.mark.parametrize("base, size, gamma, expected_prediction", [
    ("tiny-sd15", 64, 5.0, "epsilon"),
    (TOY_ID, 256, 0.0, "v_prediction"),
])
def test_first_step_loss_equals_the_diffusers_reference(tmp_path, base, size, gamma,
                                                        expected_prediction):
    with Studio.open(tmp_path / "ws") as studio:
        style, _ = make_trainable_style(studio, tmp_path, count=2,
                                        sizes=[(size, size)] * 2)
        config = tiny_config(resolution=size, min_snr_gamma=gamma, batch_size=2)
        plan = studio.consent.require_trainable(style.id)
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        spec = TrainSpec(run_id="ref", run_dir=run_dir, family="sd15", base_ref=base,
                         models_dir=studio.workspace.models_dir, config=config,
                         items=plan.included, trigger=style.trigger,
                         cache_root=studio.workspace.cache_dir(style.id), identity=base,
                         kohya_name="ref.safetensors", metadata=lambda fmt, step: {})
        trainer = Trainer(spec, Quiet())
        trainer.prepare()
        scheduler = trainer.noise_scheduler
        assert scheduler.config.prediction_type == expected_prediction
        _, indices = trainer.order.batch_at(0)
        examples = [trainer.examples[i] for i in indices]
        latents = torch.stack([e.latent for e in examples]) * trainer.pipe.vae.config.scaling_factor
        # The trainer's generator, replayed: noise first, then timesteps.
        gen = torch.Generator().set_state(trainer.generator.get_state())
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),),
                                  generator=gen)
        with torch.no_grad():
            expected = reference_loss(scheduler, trainer.denoiser, trainer.pipe.text_encoder,
                                      trainer.pipe.tokenizer, latents,
                                      [e.caption for e in examples], noise, timesteps,
                                      gamma or None)
        got = trainer.train_step(0)
        trainer.release()
    assert all(e.caption.startswith("shapestyle") for e in examples)
    assert got == pytest.approx(float(expected), rel=1e-5)


def test_min_snr_on_a_zero_terminal_snr_schedule():
    """SNR is 0 at the last step there: no NaN weight, and the run turns min-SNR off
    (it would give the step where a picture's colour is made no weight)."""
    from diffusers import DDPMScheduler

    from style_studio.models.objective import effective_min_snr_gamma, min_snr_weights

    sd = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    zero = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                         rescale_betas_zero_snr=True, prediction_type="v_prediction")
    last = torch.tensor([999])
    assert compute_snr(zero, last).item() == 0.0
    assert min_snr_weights(zero, last, 5.0).item() == 0.0  # v: min(0, 5) / (0 + 1)
    eps_zero = DDPMScheduler.from_config(zero.config, prediction_type="epsilon")
    assert min_snr_weights(eps_zero, last, 5.0).item() == 1.0  # the limit, not 0/0
    assert effective_min_snr_gamma(zero, 5.0) == 0.0
    assert effective_min_snr_gamma(sd, 5.0) == 5.0
