"""`demo`: the demo flow end to end — open the demo style, train it, A/B base vs LoRA."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from style_studio.studio import Studio

from .common import Result, follow
from .playground import comparison_dict


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo", parents=[common],
        help="open the demo style, train it (Quick draft on the toy model), A/B it",
        description="The first-start walk-through without a browser: 20 CC0 artworks with "
                    "approved captions and cleared consent, the Quick draft preset on the "
                    "built-in toy model (a few minutes on 2 CPU cores at 400 steps), then an "
                    "A/B of the base against the LoRA with each one's distance to the style.")
    demo.add_argument("--steps", type=int, default=None,
                      help="training steps (default: the Quick draft's 400)")
    demo.add_argument("--seeds", type=int, default=4, help="A/B seeds (default 4)")
    demo.add_argument("--seed", type=int, default=1, help="first A/B seed (default 1)")
    demo.add_argument("--reuse", action="store_true",
                      help="A/B the demo's newest finished run instead of training again")
    demo.set_defaults(handler=run_demo)


def run_demo(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import TrainConfig

    style = studio.demo.open()
    lines = [f"Demo style '{style.name}' ({style.id}): "
             f"{studio.consent.trainable(style.id).summary()}"]
    run = studio.playground.preferred_run(style.id) if args.reuse else None
    if run is not None and run.finished:
        run_id = run.run_id
        lines.append(f"Reusing run {run_id}.")
    else:
        config = TrainConfig.preset("quick")
        if args.steps is not None:
            config = replace(config, max_steps=args.steps,
                             sample_every=min(config.sample_every, args.steps),
                             checkpoint_every=min(config.checkpoint_every, args.steps))
        job = studio.training.start(style.id, config)
        run_id = job.params["run_id"]
        follow(studio, job, args, "Train the demo style",
               cancel=lambda: studio.training.cancel(run_id))
        trained = studio.training.get_run(run_id)
        lines.append(f"Trained run {run_id}: {trained.step} steps on {trained.image_count} "
                     f"images, base {trained.base_model}.")
    request = replace(studio.playground.default_request(style.id), run_id=run_id,
                      checkpoint=None, seed=args.seed, count=args.seeds)
    job = studio.playground.submit_ab(request)
    done = follow(studio, job, args, "A/B: base vs LoRA",
                  cancel=lambda: studio.playground.cancel(job.id))
    outputs = studio.playground.outputs(done.id)
    comparison = studio.playground.style_comparison(done.id)
    lines += [f"{o.label}: {o.path} (seed {o.settings.seed})" for o in outputs]
    lines.append(comparison.summary() if comparison else
                 "The run has no style signature to compare with.")
    return Result({"style": style.id, "run": run_id, "ab_job": done.id,
                   "outputs": [{"label": o.label, "seed": o.settings.seed, "path": str(o.path)}
                               for o in outputs],
                   "comparison": comparison_dict(comparison) if comparison else None}, lines)
