"""`push`: publish a finished run to the Hugging Face Hub, saying first what will be public."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from style_studio.studio import Studio
    from style_studio.training.records import PushPlan

from .common import ERROR, Result, find_run


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    push = sub.add_parser(
        "push", parents=[common], help="publish a run's LoRA files, card and samples to the Hub",
        description="Publish a finished run to a Hugging Face Hub model repo (created if "
                    "needed): both LoRA files, their Content Credentials, the model card and "
                    "its samples; never the training images, manifest or report. Lists what "
                    "will be public and asks first. Refuses runs with erased data, revoked "
                    "consent, or images whose licence does not allow sharing a model. The "
                    "token is the usual Hugging Face login ('hf auth login' or HF_TOKEN).")
    push.add_argument("run", help="run id, or 'latest'")
    push.add_argument("--repo", required=True, metavar="USER/NAME", help="the Hub repo")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--dry-run", action="store_true",
                      help="only list what would be public; upload nothing")
    push.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    push.set_defaults(handler=push_run)


def plan_dict(plan: PushPlan) -> dict[str, Any]:
    return {"run": plan.run_id, "repo": plan.repo_id, "allowed": plan.allowed,
            "files": [{"path": f.path_in_repo, "size": f.size} for f in plan.files],
            "refusals": plan.refusals, "kept_private": plan.kept_private}


def plan_lines(plan: PushPlan, private: bool) -> list[str]:
    from style_studio.studio import human_size

    seen = "only you (a private repo)" if private else "anyone"
    lines = [f"What will be public in {plan.repo_id} (seen by {seen}), "
             f"{len(plan.files)} file(s), {human_size(plan.total_size)}:",
             *(f"  {f.path_in_repo}  ({human_size(f.size)})" for f in plan.files),
             "Stays on this machine: " + "; ".join(plan.kept_private) + "."]
    if plan.refusals:
        lines += ["Refused:", *(f"  ✗ {r}" for r in plan.refusals)]
    return lines


def push_run(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import GateRefused, InvalidInput

    run = find_run(studio, args.run)
    plan = studio.training.plan_push(run.id, args.repo)
    lines = plan_lines(plan, args.private)
    data = {"plan": plan_dict(plan), "pushed": False, "dry_run": args.dry_run}
    if not plan.allowed:
        if args.dry_run:
            return Result(data, lines, code=ERROR)
        for line in lines:
            print(line, file=sys.stderr)
        raise GateRefused("Not published. " + " ".join(plan.refusals))
    if args.dry_run:
        return Result(data, [*lines, "Dry run: nothing was uploaded."])
    if not args.yes:
        for line in lines:
            print(line, file=sys.stderr if args.json else sys.stdout)
        if not sys.stdin.isatty():
            raise InvalidInput("Add --yes to publish without being asked (no terminal to "
                               "ask in).")
        print(f"Publish these files to {plan.repo_id}? [y/N] ", end="", file=sys.stderr,
              flush=True)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return Result({**data, "cancelled": True}, ["Not published."], code=ERROR)
        lines = []
    result = studio.training.push(run.id, plan.repo_id, private=args.private)
    return Result({**data, "pushed": True, "url": result.url, "commit_url": result.commit_url,
                   "files": result.files},
                  [*lines, f"Published {len(result.files)} file(s) to {result.url}"])
