"""Publishing a finished run to the Hugging Face Hub: what becomes public, and when not.

What is public: both LoRA files, their Content Credentials (`.c2pa`) when signed, the
model card (README.md) and the sample pictures the card shows, each at its place in the
run folder so the card's links work. What never leaves the machine: the training images,
the manifest (captions, consent states, excluded images and why), the provenance report,
checkpoints, metrics and caches. The card already names the creators and licences (a CC BY
credit must be public) and the manifest's sha256, which ties the LoRA to the manifest the
artist can show a client privately.

Refusals (`refusals`):
- the run has not finished (or has no LoRA files);
- the run contains erased data (retrain first), or an image's consent was revoked since;
- an image's licence does not let a model made from it be shared: written permission
  (recorded as permission to train, not to publish), a custom licence (terms Style Studio
  cannot read), or none/unknown; and share-alike terms that clash (two different SA
  licences, or CC BY-SA beside a non-commercial licence). Own work, public domain, CC0,
  CC BY, CC BY-SA and CC BY-NC(-SA) may be shared: the card's `license` carries NC and SA
  over, and the card credits every creator (CC BY).
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from typing import Any

from style_studio.base.erasure import ERASED_FLAG
from style_studio.base.errors import GateRefused, InvalidInput, StudioError
from style_studio.base.licences import (
    CUSTOM,
    LICENCES,
    WRITTEN_PERMISSION,
    licence_for,
    licence_label,
)
from style_studio.base.workspace import Workspace

from .records import PublicFile, PushPlan, PushResult, Run
from .run_details import LORA_KEYS, RunImage, card_samples, run_files

STAGING_KIND = "hub-push"
# Files of the run folder that go public (run_files keys); the rest stay here.
PUBLIC_KEYS = (*LORA_KEYS, *(f"{k}-c2pa" for k in LORA_KEYS), "card")
KEPT_PRIVATE = ("the training images", "manifest.json (captions, consent, excluded images)",
                "provenance.md (the report for clients)", "checkpoints, metrics and caches")
# Licences whose recorded terms do not cover sharing a model trained on the image.
NOT_SHAREABLE = {
    WRITTEN_PERMISSION: "the written permission recorded is to train, not to publish a model",
    CUSTOM: "Style Studio cannot tell whether the custom terms allow sharing a model",
}
_REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def check_repo_id(repo_id: str) -> str:
    """`user/name` (or `org/name`), trimmed; anything else is refused in words."""
    text = (repo_id or "").strip()
    if not _REPO_RE.fullmatch(text) or ".." in text or text.endswith((".git", ".")):
        raise InvalidInput(f"'{text}' is not a Hub repository name: write it as user/name "
                           "(letters, digits, '-', '_' and '.').")
    return text


def plan_push(run: Run, images: list[RunImage], repo_id: str) -> PushPlan:
    """The files a push of `run` would make public and every reason it is refused."""
    plan = PushPlan(run.id, check_repo_id(repo_id), kept_private=list(KEPT_PRIVATE))
    files = [f for f in run_files(run.run_dir) if f.key in PUBLIC_KEYS]
    paths = [f.path for f in files] + (card_samples(run.run_dir) if files else [])
    plan.files = [PublicFile(p.relative_to(run.run_dir).as_posix(), p, p.stat().st_size)
                  for p in paths]
    if run.status != "done":
        plan.refusals.append(f"Run {run.id} is {run.shown_status}: only a finished run can "
                             "be published.")
    elif not any(f.key in LORA_KEYS for f in files):
        plan.refusals.append(f"Run {run.id} has no LoRA files to publish.")
    erased = [i for i in images if i.erased_at]
    if ERASED_FLAG in run.flags or erased:
        plan.refusals.append(f"This run contains erased data ({len(erased) or 'some'} "
                             "training image(s) erased since): retrain without them first, "
                             "then publish the new run.")
    revoked = [i for i in images if i.revoked]
    if revoked:
        plan.refusals.append("Consent was revoked since training for "
                             + _names(revoked) + ": retrain without them first.")
    plan.refusals += licence_refusals([i for i in images if not i.erased_at])
    return plan


def licence_refusals(images: list[RunImage]) -> list[str]:
    """Why the training images' licences forbid sharing a model made from them."""
    refused: dict[str, list[RunImage]] = defaultdict(list)
    for image in images:
        found = licence_for(image.licence)
        if found is None:
            refused[image.licence or ""].append(image)
        elif found.key in NOT_SHAREABLE:
            refused[found.key].append(image)
    out = []
    for key, group in refused.items():
        why = NOT_SHAREABLE.get(key, "Style Studio does not know what this licence allows")
        out.append(f"{licence_label(key) if key else 'No licence'} ({why}): "
                   f"{_names(group)}. Record a licence that allows sharing (or your own "
                   "work), or leave these images out and retrain.")
    terms = {licence_for(i.licence).key for i in images if licence_for(i.licence)}
    share_alike = sorted(k for k in terms if LICENCES[k].share_alike)
    non_commercial = sorted(k for k in terms if LICENCES[k].non_commercial)
    # One share-alike licence, and non-commercial only if it is non-commercial too.
    clash = sorted({*share_alike[1:], *(k for k in non_commercial if share_alike
                                         and not LICENCES[share_alike[0]].non_commercial)})
    if share_alike and clash:
        out.append(f"{licence_label(share_alike[0])} asks that a model made from its images "
                   "be shared under that licence, but this run also has images under "
                   + ", ".join(licence_label(k) for k in clash)
                   + ", whose terms it cannot carry together: retrain on images whose "
                   "licences agree.")
    return out


def _names(images: list[RunImage], most: int = 6) -> str:
    named = [i.filename or f"image {i.sha256[:12]}" for i in images]
    extra = f" and {len(named) - most} more" if len(named) > most else ""
    return ", ".join(named[:most]) + extra


def push(plan: PushPlan, workspace: Workspace, *, token: str | None = None,
         private: bool = False, api: Any = None) -> PushResult:
    """Upload exactly `plan.files`: `create_repo(exist_ok=True)`, then `upload_folder` of a
    staging folder holding only them. The token: `token`, else the usual Hugging Face
    login (HF_TOKEN or `hf auth login`). `api`: an `HfApi`-like object (tests)."""
    if not plan.allowed:
        raise GateRefused("Not published. " + " ".join(plan.refusals))
    if api is None:
        api = _hub_api(token)
    staging = workspace.browser_dir(STAGING_KIND)
    try:
        for item in plan.files:
            target = staging / item.path_in_repo
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.source, target)
        try:
            repo = api.create_repo(plan.repo_id, repo_type="model", private=private,
                                   exist_ok=True)
            commit = api.upload_folder(repo_id=plan.repo_id, repo_type="model",
                                       folder_path=str(staging),
                                       commit_message=f"Style Studio run {plan.run_id}")
        except StudioError:
            raise
        except Exception as exc:  # the Hub's HTTP errors, a network that is down
            raise StudioError(f"The Hub refused or could not be reached ({type(exc).__name__}"
                              f": {' '.join(str(exc).split())[:300]}). Nothing was "
                              "published unless the Hub says otherwise.") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    url = str(getattr(repo, "url", "") or repo or f"https://huggingface.co/{plan.repo_id}")
    return PushResult(plan.run_id, plan.repo_id, url, private,
                      [f.path_in_repo for f in plan.files],
                      str(getattr(commit, "commit_url", "") or ""))


def _hub_api(token: str | None) -> Any:
    """huggingface_hub's client with the given token or the usual login; none: refused."""
    from huggingface_hub import HfApi, get_token

    if not (token or get_token()):
        raise InvalidInput("You are not logged in to the Hugging Face Hub: run 'hf auth "
                           "login' (or set HF_TOKEN) with a token that can write, then try "
                           "again.")
    return HfApi(token=token)

