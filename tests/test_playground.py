"""Playground on the tiny model: LoRA effect, no base reloads, provenance, waiting, grids."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image
from playground_fixtures import make_lora_run, manifest_sha256, one, pixels, save_random_lora
from training_helpers import hold_device

from style_studio.base.errors import InvalidInput, NotFound
from style_studio.base.files import sha256_file
from style_studio.base.jobs import JobContext
from style_studio.playground.output_metadata import TRAINED_ALGORITHMIC_MEDIA, XMP_KEY, read_xmp
from style_studio.playground.pipeline_cache import PipelineCache
from style_studio.playground.records import GenerateRequest

STEPS = 3
PROMPT = "inkwash, a heron in reeds"


@pytest.fixture
def run_id(studio, style):
    return make_lora_run(studio, style.id, steps=(100, 200), seed=1)


def ask(style, **changes) -> GenerateRequest:
    values = {"prompt": PROMPT, "seed": 7, "steps": STEPS, **changes}
    return GenerateRequest(style_id=style.id, **values)




def test_scale_zero_reproduces_the_base_and_scale_above_zero_differs(studio, style, run_id):
    base = pixels(one(studio, ask(style)))
    at_zero = pixels(one(studio, ask(style, run_id=run_id, lora_scale=0.0)))
    at_half = pixels(one(studio, ask(style, run_id=run_id, lora_scale=0.5)))
    at_one = pixels(one(studio, ask(style, run_id=run_id, lora_scale=1.0)))
    base_again = pixels(one(studio, ask(style)))  # LoRA switched off on the same pipeline

    assert np.array_equal(at_zero, base)
    assert np.array_equal(base_again, base)
    assert np.abs(at_half - base).mean() > 2
    assert np.abs(at_one - base).mean() > np.abs(at_half - base).mean()


def test_switching_lora_checkpoint_and_scale_never_reloads_the_base(studio, style, run_id):
    other_run = make_lora_run(studio, style.id, steps=(50,), seed=2)
    cache = studio.playground.cache
    first = pixels(one(studio, ask(style, run_id=run_id)))
    seen = [first]
    for changes in ({"run_id": run_id, "checkpoint": 100}, {"run_id": run_id, "checkpoint": 200},
                    {"run_id": other_run}, {"run_id": other_run, "checkpoint": 50},
                    {"run_id": run_id, "checkpoint": 100, "lora_scale": 0.4}, {}):
        seen.append(pixels(one(studio, ask(style, **changes))))
    assert (cache.base_loads, cache.lora_loads) == (1, 5)  # 5 distinct LoRAs, each loaded once
    assert len({arr.tobytes() for arr in seen}) == len(seen)  # each made a different image

    pixels(one(studio, ask(style, run_id=run_id, checkpoint=100)))  # still cached
    assert cache.lora_loads == 5
    again = pixels(one(studio, ask(style, run_id=run_id)))  # evicted (max 4), loaded again
    assert cache.lora_loads == 6
    assert np.array_equal(again, first)
    assert cache.base_loads == 1


def test_unused_adapters_are_unloaded_and_reload_identically(studio, style, run_id):
    cache = PipelineCache(studio.workspace.models_dir, max_adapters=2)
    studio.playground.cache = cache
    outputs = {}
    for step in (None, 100, 200):
        outputs[step] = pixels(one(studio, ask(style, run_id=run_id, checkpoint=step)))
    names = cache.adapter_names("tiny-sd15", "sd15")
    pipe = cache.activate("tiny-sd15", "sd15").pipe
    assert len(names) == 2
    assert sorted(pipe.get_list_adapters()["unet"]) == sorted(names)

    final_again = pixels(one(studio, ask(style, run_id=run_id, checkpoint=None)))
    assert np.array_equal(final_again, outputs[None])
    assert (cache.base_loads, cache.lora_loads) == (1, 4)


def test_a_rewritten_lora_file_is_loaded_afresh(studio, style, run_id):
    before = one(studio, ask(style, run_id=run_id))
    lora_dir = studio.workspace.run_dir(style.id, run_id) / "lora"
    time.sleep(0.01)
    save_random_lora(lora_dir, seed=777)  # e.g. a resumed run wrote a new final LoRA
    after = one(studio, ask(style, run_id=run_id))
    assert after.settings.lora_sha256 == sha256_file(lora_dir / "pytorch_lora_weights.safetensors")
    assert after.settings.lora_sha256 != before.settings.lora_sha256
    assert not np.array_equal(pixels(after), pixels(before))
    assert studio.playground.cache.base_loads == 1


def test_png_metadata_is_present_and_right(studio, style, run_id):
    output = one(studio, ask(style, run_id=run_id, checkpoint=100, lora_scale=0.8, seed=None,
                             negative_prompt="blurry", guidance=6.5))
    assert output.path.parent == studio.workspace.outputs_dir(style.id)
    chunks = Image.open(output.path).text
    seed = int(chunks["seed"])
    lora_file = (studio.workspace.run_dir(style.id, run_id) / "checkpoints" / "step-000100"
                 / "pytorch_lora_weights.safetensors")
    expected = {
        "prompt": PROMPT, "negative_prompt": "blurry", "steps": str(STEPS),
        "guidance": "6.5", "size": "64x64", "run_id": run_id, "checkpoint": "step 100",
        "lora_scale": "0.8", "manifest_sha256": manifest_sha256(studio, style.id, run_id),
        "base_model": "tiny-sd15", "base_model_identity": "tiny-sd15@seed0",
        "lora_sha256": sha256_file(lora_file), "style_id": style.id,
        "software": "Style Studio",
    }
    assert {k: chunks.get(k) for k in expected} == expected
    assert 0 <= seed < 2**32
    assert studio.store.get("runs", run_id)["manifest_sha256"] == expected["manifest_sha256"]
    assert f"Seed: {seed}" in chunks["parameters"]

    packet = chunks[XMP_KEY]
    root = ET.fromstring(packet[packet.index("<x:xmpmeta"):packet.index("<?xpacket end")])
    description = root.find(".//{http://www.w3.org/1999/02/22-rdf-syntax-ns#}Description")
    source_type = description.get("{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}DigitalSourceType")
    assert source_type == TRAINED_ALGORITHMIC_MEDIA
    assert read_xmp(output.path)["Iptc4xmpExt:DigitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA


def test_use_these_settings_again_remakes_the_same_image(studio, style, run_id):
    first = one(studio, ask(style, run_id=run_id, checkpoint=200, lora_scale=0.7, seed=None))
    request = studio.playground.settings_of(first.path)
    assert (request.run_id, request.checkpoint, request.lora_scale, request.seed) == (
        run_id, 200, 0.7, first.settings.seed)
    again = one(studio, request)
    assert np.array_equal(pixels(again), pixels(first))
    history = studio.playground.history(style.id)
    assert [o.path for o in history] == [again.path, first.path]  # newest first


def test_history_skips_pngs_without_settings(studio, style):
    one(studio, ask(style))
    stray = studio.workspace.outputs_dir(style.id) / "zzz-stray.png"
    Image.new("RGB", (8, 8)).save(stray)
    history = studio.playground.history(style.id)
    assert len(history) == 1 and history[0].settings.seed == 7
    with pytest.raises(InvalidInput, match="carries no Style Studio settings"):
        studio.playground.settings_of(stray)


def test_ab_is_the_same_seed_without_and_with_the_lora(studio, style, run_id):
    base = pixels(one(studio, ask(style, seed=11)))
    job = studio.playground.submit_ab(ask(style, run_id=run_id, seed=11, count=2))
    assert studio.jobs.wait(job.id, 120).status == "done"
    outputs = studio.playground.outputs(job.id)
    kinds = [(o.settings.kind, o.settings.seed, o.settings.run_id) for o in outputs]
    assert kinds == [("ab-base", 11, None), ("ab-lora", 11, run_id),
                     ("ab-base", 12, None), ("ab-lora", 12, run_id)]
    assert np.array_equal(pixels(outputs[0]), base)
    assert not np.array_equal(pixels(outputs[1]), base)
    assert [o.label for o in outputs] == ["A", "B", "A", "B"]
    assert outputs[1].settings.summary().startswith(f"seed 11 · LoRA {run_id} final @ 1")


def test_grid_has_the_requested_shape_and_labels(studio, style, run_id):
    request = ask(style, run_id=run_id, seed=3)
    job = studio.playground.submit_grid(request, [None, 100], scales=[0.0, 0.5, 1.0])
    done = studio.jobs.wait(job.id, 120)
    assert done.status == "done", done.error
    grid = done.result["grid"]
    assert grid["rows"] == ["Final (step 200)", "Step 100"]  # the trainer's labels
    assert grid["cols"] == ["scale 0", "scale 0.5", "scale 1"]
    outputs = studio.playground.outputs(job.id)
    assert [(o.settings.checkpoint, o.settings.lora_scale) for o in outputs] == [
        (None, 0.0), (None, 0.5), (None, 1.0), (100, 0.0), (100, 0.5), (100, 1.0)]

    grid_file = Image.open(studio.playground.grid_path(job.id))
    assert grid_file.text["grid_rows"].splitlines() == grid["rows"]
    assert grid_file.text["grid_cols"].splitlines() == grid["cols"]
    image = grid_file.convert("RGB")
    boxes = grid["boxes"]
    assert (len(boxes), len(boxes[0])) == (2, 3)
    cells = [[np.asarray(image.crop(tuple(box)), dtype=np.int16) for box in row] for row in boxes]
    for r in range(2):
        for c in range(3):
            tile = Image.open(outputs[r * 3 + c].path).convert("RGB")
            expected = tile.resize(cells[r][c].shape[1::-1], Image.Resampling.NEAREST)
            assert np.array_equal(cells[r][c], np.asarray(expected, dtype=np.int16))
    assert np.array_equal(cells[0][0], cells[1][0])  # scale 0 is the base for every row
    assert not np.array_equal(cells[0][2], cells[1][2])
    labels = np.asarray(image, dtype=np.int16)[:, : boxes[0][0][0]]  # left of the cells
    assert (labels < 128).any(), "row labels are drawn"
    header = np.asarray(image, dtype=np.int16)[: boxes[0][0][1]]
    assert (header < 128).sum() > 100, "title and column labels are drawn"


def test_grid_of_prompts_and_its_limits(studio, style, run_id):
    job = studio.playground.submit_grid(ask(style, run_id=run_id), [None, 200],
                                        prompts=["inkwash, a cat", "inkwash, a boat"])
    done = studio.jobs.wait(job.id, 120)
    assert done.result["grid"]["cols"] == ["inkwash, a cat", "inkwash, a boat"]
    assert done.result["grid"]["rows"] == ["Final (step 200)", "Step 200"]
    with pytest.raises(InvalidInput, match="either LoRA scales or prompts"):
        studio.playground.submit_grid(ask(style, run_id=run_id), [None])
    with pytest.raises(InvalidInput, match="too big"):
        studio.playground.submit_grid(ask(style, run_id=run_id), [None, 100, 200],
                                      scales=[i / 10 for i in range(13)])
    with pytest.raises(NotFound, match="has no checkpoint at step 999"):
        studio.playground.submit_grid(ask(style, run_id=run_id), [999], scales=[1.0])


def test_a_generation_asked_for_during_training_waits_for_it(studio, style, run_id):
    started, release = threading.Event(), threading.Event()

    def fake_training(ctx: JobContext) -> dict:
        started.set()
        ctx.progress(0.3, "step 30/100")
        assert release.wait(60)
        return {}

    training = studio.jobs.submit("training", fake_training, title="Training Ink washes",
                                  style_id=style.id)
    assert started.wait(10)
    job = studio.playground.submit(ask(style, run_id=run_id))
    time.sleep(0.5)
    queued = studio.jobs.get(job.id)
    assert queued.status == "queued"
    assert "Waiting for the device" in queued.message
    reason = studio.playground.waiting_reason(job.id)
    assert "Training “Training Ink washes” is running (30%)" in reason
    assert not list(studio.workspace.outputs_dir(style.id).glob("*.png"))
    from style_studio.ui.playground_tab import job_status  # what the tab's status line says

    assert "Waiting for the device: Training" in job_status(studio, queued)

    release.set()
    done = studio.jobs.wait(job.id, 120)
    assert done.status == "done", done.error
    assert done.started_at >= studio.jobs.get(training.id).finished_at
    assert studio.playground.waiting_reason(job.id) is None
    assert len(studio.playground.outputs(job.id)) == 1


def test_progress_is_reported_per_denoising_step(studio, style, run_id, monkeypatch):
    seen: list[tuple[float, str]] = []
    original = JobContext.progress

    def record(self, fraction, message="", **extra):
        seen.append((fraction, message))
        original(self, fraction, message, **extra)

    monkeypatch.setattr(JobContext, "progress", record)
    one(studio, ask(style, run_id=run_id, count=2, steps=4))
    steps = [m for _, m in seen if ": step " in m]
    # PNDM runs steps+1 timesteps (one warm-up step), reported as they happen
    assert steps == [f"Image {i} of 2: step {s}/5" for i in (1, 2) for s in range(1, 6)]
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_cancel_stops_between_steps(studio, style, monkeypatch):
    original = JobContext.progress

    def cancel_at_step_two(self, fraction, message="", **extra):
        original(self, fraction, message, **extra)
        if "step 2/" in message:
            studio.jobs.cancel(self.job_id)

    monkeypatch.setattr(JobContext, "progress", cancel_at_step_two)
    job = studio.playground.submit(ask(style, count=3, steps=6))
    done = studio.jobs.wait(job.id, 120)
    assert done.status == "cancelled"
    assert not list(studio.workspace.outputs_dir(style.id).glob("*.png"))


def test_bad_requests_are_refused_with_words_to_fix_them(studio, style, run_id):
    pg = studio.playground
    with pytest.raises(InvalidInput, match="Write a prompt"):
        pg.submit(ask(style, prompt="  "))
    with pytest.raises(InvalidInput, match="multiple of 8"):
        pg.submit(ask(style, width=100))
    with pytest.raises(InvalidInput, match="steps must be between"):
        pg.submit(ask(style, steps=0))
    with pytest.raises(NotFound, match="no longer exists"):
        pg.submit(ask(style, run_id="gone"))
    with pytest.raises(NotFound, match="step 150"):
        pg.submit(ask(style, run_id=run_id, checkpoint=150))
    with pytest.raises(InvalidInput, match="choose a run first"):
        pg.submit_ab(ask(style))
    assert studio.jobs.list() == []  # nothing was queued for a bad request


def test_defaults_use_the_trigger_word_and_the_newest_run(studio, style, run_id):
    request = studio.playground.default_request(style.id)
    assert request.prompt.startswith("inkwash, ")
    assert (request.run_id, request.width, request.height) == (run_id, 64, 64)
    runs = studio.playground.runs(style.id)
    assert [c.label for c in runs[0].checkpoints] == ["Final (step 200)", "Step 200", "Step 100"]


def test_a_run_with_erased_data_warns(studio, style):
    run_id = make_lora_run(studio, style.id, steps=(10,), flags=["contains erased data"])
    job = studio.playground.submit(ask(style, run_id=run_id))
    done = studio.jobs.wait(job.id, 120)
    assert "erased" in done.result["warning"]
    assert "contains erased data" in studio.playground.runs(style.id)[0].label


def test_a_run_trained_by_the_real_trainer_plays_back(studio, tmp_path):
    """The contract end to end: whatever the trainer writes, the playground loads."""
    from training_helpers import make_trainable_style, tiny_config

    trained, _ = make_trainable_style(studio, tmp_path)
    job = studio.training.start(trained.id, tiny_config())
    assert studio.jobs.wait(job.id, 300).status == "done", studio.jobs.get(job.id).error
    run = studio.training.runs(trained.id)[0]
    checkpoints = studio.playground.runs(trained.id)[0].checkpoints
    assert checkpoints[0].step is None and len(checkpoints) >= 2

    prompt = "shapestyle, a house"
    base = pixels(one(studio, ask(trained, prompt=prompt)))
    at_zero = one(studio, ask(trained, prompt=prompt, run_id=run.id, lora_scale=0.0))
    final = one(studio, ask(trained, prompt=prompt, run_id=run.id, lora_scale=1.0))
    earlier = one(studio, ask(trained, prompt=prompt, run_id=run.id,
                              checkpoint=checkpoints[-1].step))
    assert np.array_equal(pixels(at_zero), base)
    assert not np.array_equal(pixels(final), base)
    assert final.settings.manifest_sha256 == run.manifest_sha256 != ""
    assert earlier.settings.checkpoint == checkpoints[-1].step
    assert studio.playground.cache.base_loads == 1


def test_the_cache_makes_room_for_training_queued_behind_a_generation(studio, style):
    release = hold_device(studio)
    job = studio.playground.submit(ask(style))
    training = studio.jobs.submit("training", lambda ctx: {}, title="Training")
    release.set()
    assert studio.jobs.wait(job.id, 120).status == "done"
    assert studio.jobs.wait(training.id, 60).status == "done"
    cache = studio.playground.cache
    assert cache.base_loads == 1 and not cache.is_loaded("tiny-sd15", "sd15")
    one(studio, ask(style))  # the next generation simply loads it again
    assert cache.base_loads == 2
