"""Publishing a run to the Hugging Face Hub (issue 18): exactly which files go public, the
refusals (unfinished, erased data, licences that do not allow sharing a model), and the
`push` command's --dry-run --json. The Hub client is a stand-in at the network boundary:
a fake `HfApi` recording create_repo and the files in the folder given to upload_folder."""

from __future__ import annotations

import hashlib
import inspect
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from hub_standin import LocalHub
from huggingface_hub import HfApi, ModelCard
from test_cli import _command, _env, cli
from training_helpers import make_trainable_style, tiny_config

from style_studio.base.licences import CUSTOM, OWN_WORK, WRITTEN_PERMISSION
from style_studio.base.limits import DemoLimits, LimitReached
from style_studio.consent.records import ConsentRecord
from style_studio.studio import GateRefused, InvalidInput, Studio
from style_studio.training import publish
from style_studio.training.run_details import RunImage

REPO = "ana/shapes-lora"


class FakeHub:
    """What the Hub would have received: create_repo's arguments and, for each
    upload_folder, every file in the folder (path in repo -> sha256) at call time. Each
    call must also fit the real `HfApi` method's signature."""

    def __init__(self) -> None:
        self.repos: list[tuple[str, dict[str, Any]]] = []
        self.uploads: list[dict[str, str]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        inspect.signature(HfApi.create_repo).bind(self, repo_id, **kwargs)
        self.repos.append((repo_id, kwargs))
        return f"https://hub.invalid/{repo_id}"

    def upload_folder(self, *, repo_id: str, folder_path: str, **kwargs: Any) -> None:
        inspect.signature(HfApi.upload_folder).bind(self, repo_id=repo_id,
                                                    folder_path=folder_path, **kwargs)
        root = Path(folder_path)
        self.uploads.append({p.relative_to(root).as_posix(): _sha(p)
                             for p in sorted(root.rglob("*")) if p.is_file()})


def _sha(path: Path) -> str:
    return _sha_bytes(path.read_bytes())


def _sha_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _train(studio: Studio, style_id: str) -> str:
    job = studio.training.start(style_id, tiny_config(sample_every=3), base_model="tiny-sd15")
    studio.jobs.wait(job.id, timeout=600)
    run = studio.training.get_run(job.params["run_id"])
    assert run.status == "done", run.error
    return run.id


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Any]:
    """A closed workspace with two finished tiny runs: one on the artist's own work, one
    where an image is used under written permission."""
    root = tmp_path_factory.mktemp("push")
    workspace = root / "workspace"
    with Studio.open(workspace) as studio:
        own, own_ids = make_trainable_style(studio, root, name="Shapes")
        lent, lent_ids = make_trainable_style(studio, root, name="Lent shapes")
        studio.consent.set([lent_ids[0]], ConsentRecord(
            creator="Bo Lender", relationship="licensed", licence=WRITTEN_PERMISSION,
            evidence_text="Email from Bo, 2025-01-02: yes, train on it.", status="cleared",
            date="2025-01-02"))
        runs = {"own": _train(studio, own.id), "lent": _train(studio, lent.id)}
    return {"workspace": workspace, "runs": runs, "own_ids": own_ids, "root": root}


@pytest.fixture
def copy(trained, tmp_path) -> Path:
    """A copy of the trained workspace a test may change."""
    target = tmp_path / "workspace"
    shutil.copytree(trained["workspace"], target)
    return target


def test_plan_lists_exactly_the_public_files(trained):
    with Studio.open(trained["workspace"]) as studio:
        run = studio.training.get_run(trained["runs"]["own"])
        plan = studio.training.plan_push(run.id, f"  {REPO} ")
    assert plan.allowed, plan.refusals
    assert plan.repo_id == REPO
    names = [f.path_in_repo for f in plan.files]
    assert names == ["lora/pytorch_lora_weights.safetensors",
                     "lora/pytorch_lora_weights.c2pa",
                     "lora/shapes.kohya.safetensors", "lora/shapes.kohya.c2pa",
                     "README.md", "samples/step-000006-0.png"]
    # the card's widget points at the sample that goes with it
    card = (run.run_dir / "README.md").read_text(encoding="utf-8")
    assert "samples/step-000006-0.png" in card
    assert not any(n.endswith(("manifest.json", "provenance.md", ".jpg")) for n in names)
    assert not any(n.startswith(("images/", "checkpoints/", "cache/")) for n in names)
    assert any("manifest.json" in k for k in plan.kept_private)


def test_push_uploads_exactly_the_planned_files(trained, copy):
    hub = FakeHub()
    with Studio.open(copy) as studio:
        run = studio.training.get_run(trained["runs"]["own"])
        plan = studio.training.plan_push(run.id, REPO)
        result = studio.training.push(run.id, REPO, private=True, api=hub)
        staged = list((studio.workspace.upload_cache).rglob("*.safetensors"))
        audit = [a for a in studio.store.all("audit") if a["action"] == "training.push"]
    assert hub.repos == [(REPO, {"repo_type": "model", "private": True, "exist_ok": True})]
    assert len(hub.uploads) == 1
    assert hub.uploads[0] == {f.path_in_repo: _sha(f.source) for f in plan.files}
    assert result.files == [f.path_in_repo for f in plan.files]
    assert result.url == f"https://hub.invalid/{REPO}" and result.private
    assert not [p for p in staged if "hub-push" in str(p)]  # the staging folder is gone
    assert audit and audit[-1]["details"]["repo_id"] == REPO


def test_the_real_client_uploads_them_to_a_local_hub(trained, copy, monkeypatch):
    """huggingface_hub itself, over HTTP, against a local stand-in for the Hub."""
    hub = LocalHub().start()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        with Studio.open(copy) as studio:
            run_id = trained["runs"]["own"]
            plan = studio.training.plan_push(run_id, REPO)
            result = studio.training.push(run_id, REPO, token="hf_local_test")
    finally:
        hub.stop()
    [created] = hub.repos
    assert (created["organization"], created["name"], created["visibility"]) == (
        "ana", "shapes-lora", "public")
    assert {path: _sha_bytes(data) for path, data in hub.files[REPO].items()} == {
        f.path_in_repo: _sha(f.source) for f in plan.files}
    assert hub.tokens == {"Bearer hf_local_test"}
    assert result.url == f"{hub.endpoint}/{REPO}"
    assert result.commit_url.startswith(f"{hub.endpoint}/{REPO}/commit/")


def test_a_run_with_erased_data_is_refused_and_nothing_uploaded(trained, copy):
    hub = FakeHub()
    with Studio.open(copy) as studio:
        run_id = trained["runs"]["own"]
        studio.consent.erase([trained["own_ids"][1]], "the creator asked")
        plan = studio.training.plan_push(run_id, REPO)
        assert not plan.allowed
        assert any("erased data" in r and "retrain" in r for r in plan.refusals)
        with pytest.raises(GateRefused, match="erased data"):
            studio.training.push(run_id, REPO, api=hub)
    assert hub.repos == [] and hub.uploads == []


def test_a_licence_that_does_not_allow_sharing_is_refused_by_name(trained):
    hub = FakeHub()
    with Studio.open(trained["workspace"]) as studio:
        run_id = trained["runs"]["lent"]
        plan = studio.training.plan_push(run_id, REPO)
        assert not plan.allowed
        [refusal] = plan.refusals
        assert refusal.startswith("Written permission (")
        assert "img-00.png" in refusal and "img-01.png" not in refusal
        with pytest.raises(GateRefused, match="Written permission"):
            studio.training.push(run_id, REPO, api=hub)
    assert hub.repos == [] and hub.uploads == []


def test_unfinished_runs_and_bad_repo_names_are_refused(trained, copy):
    with Studio.open(copy) as studio:
        run_id = trained["runs"]["own"]
        studio.store.update("runs", run_id, status="cancelled")
        plan = studio.training.plan_push(run_id, REPO)
        assert any("only a finished run" in r for r in plan.refusals)
        for bad in ("shapes", "a/b/c", "ana/../x", "/x", "ana/ x"):
            with pytest.raises(InvalidInput, match="user/name"):
                studio.training.plan_push(run_id, bad)


def test_without_a_login_the_real_client_is_not_even_built(trained, copy, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with Studio.open(copy) as studio, pytest.raises(InvalidInput, match="not logged in"):
        studio.training.push(trained["runs"]["own"], REPO)


def test_a_public_demo_never_publishes(trained, copy):
    hub = FakeHub()
    with Studio.open(copy) as studio:
        studio.training.limits = DemoLimits()
        with pytest.raises(LimitReached, match="does not publish"):
            studio.training.push(trained["runs"]["own"], REPO, api=hub)
    assert hub.repos == [] and hub.uploads == []


def _image(name: str, licence: str) -> RunImage:
    return RunImage(sha256=hashlib.sha256(name.encode()).hexdigest(), image_id=name,
                    caption="", creator="C", licence=licence, licence_label="",
                    consent_at_training="cleared", filename=name)


@pytest.mark.parametrize(("licences", "refused"), [
    ([OWN_WORK, "CC0-1.0", "LicenseRef-PublicDomain", "CC-BY-4.0"], ""),
    (["CC-BY-SA-4.0", "CC-BY-4.0", OWN_WORK], ""),
    (["CC-BY-NC-4.0", "CC-BY-NC-SA-4.0"], ""),  # shared as BY-NC-SA: both satisfied
    (["CC-BY-NC-SA-4.0", OWN_WORK], ""),
    ([WRITTEN_PERMISSION, OWN_WORK], "Written permission"),
    ([CUSTOM], "Custom licence"),
    (["", OWN_WORK], "No licence"),
    (["CC-BY-SA-4.0", "CC-BY-NC-4.0"], "CC BY-SA 4.0 asks"),
    (["CC-BY-SA-4.0", "CC-BY-NC-SA-4.0"], "CC BY-NC-SA 4.0 asks"),
])
def test_licence_rule(licences: list[str], refused: str):
    reasons = publish.licence_refusals(
        [_image(f"i{n}.png", key) for n, key in enumerate(licences)])
    if not refused:
        assert reasons == []
    else:
        assert len(reasons) == 1 and reasons[0].startswith(refused), reasons


def test_cli_dry_run_json_lists_the_files_and_the_refusals(trained, copy):
    ok = cli(copy, "--json", "push", trained["runs"]["own"], "--repo", REPO, "--dry-run")
    assert ok.returncode == 0, ok.stderr
    data = json.loads(ok.stdout)
    assert data["ok"] is True and data["dry_run"] is True and data["pushed"] is False
    assert [f["path"] for f in data["plan"]["files"]] == [
        "lora/pytorch_lora_weights.safetensors", "lora/pytorch_lora_weights.c2pa",
        "lora/shapes.kohya.safetensors", "lora/shapes.kohya.c2pa", "README.md",
        "samples/step-000006-0.png"]
    assert all(f["size"] > 0 for f in data["plan"]["files"])
    assert data["plan"]["refusals"] == []

    refused = cli(copy, "--json", "push", trained["runs"]["lent"], "--repo", REPO,
                  "--dry-run")
    assert refused.returncode == 1
    data = json.loads(refused.stdout)
    assert data["ok"] is False and data["plan"]["allowed"] is False
    assert "Written permission" in data["plan"]["refusals"][0]

    text = cli(copy, "push", trained["runs"]["own"], "--repo", REPO, "--dry-run")
    assert text.returncode == 0
    assert "What will be public in ana/shapes-lora" in text.stdout
    assert "Dry run: nothing was uploaded." in text.stdout

    # without --yes and with no terminal to ask in: refused before any upload
    unasked = cli(copy, "push", trained["runs"]["own"], "--repo", REPO)
    assert unasked.returncode == 1
    assert "Add --yes" in unasked.stderr and "Traceback" not in unasked.stderr


def test_cli_push_yes_uploads_through_the_real_client(trained, copy):
    """The command end to end: --yes, the token from HF_TOKEN (the usual login), the Hub
    at HF_ENDPOINT (a local stand-in)."""
    hub = LocalHub().start()
    env = {**_env(), "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.endpoint,
           "HF_TOKEN": "hf_from_login"}
    try:
        done = subprocess.run(_command(copy, "--json", "push", trained["runs"]["own"],
                                       "--repo", REPO, "--yes", "--private"),
                              cwd=Path(__file__).resolve().parents[1], env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        hub.stop()
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] and data["pushed"] and data["url"] == f"{hub.endpoint}/{REPO}"
    assert sorted(hub.files[REPO]) == sorted(f["path"] for f in data["plan"]["files"])
    assert hub.repos[0]["visibility"] == "private"
    assert hub.tokens == {"Bearer hf_from_login"}


def _github_anchor(heading: str) -> str:
    """GitHub's heading anchors, which the Hub's Markdown follows: lower case, punctuation
    other than '-' dropped, spaces to '-' (github-slugger)."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_of_the_published_card_resolves_in_the_repo(trained):
    """The card went up with `license_link: provenance.md` — a file kept private, so the
    Hub's licence link led nowhere. Every relative link of the published card (licence,
    widget pictures, Markdown links) must name a file that goes up, and an anchor one of
    its headings."""
    with Studio.open(trained["workspace"]) as studio:
        run = studio.training.get_run(trained["runs"]["own"])
        plan = studio.training.plan_push(run.id, REPO)
    public = {f.path_in_repo for f in plan.files}
    card = ModelCard((run.run_dir / "README.md").read_text(encoding="utf-8"))
    front = card.data.to_dict()
    links = [front.get("license_link"), *(w["output"]["url"] for w in front.get("widget", []))]
    links += re.findall(r"\]\(([^)\s]+)\)", card.text)
    relative = [link for link in links if link and not re.match(r"^[a-z]+://", link)]
    assert front.get("license_link") in relative  # own work: licence "other", linked
    anchors = {_github_anchor(h) for h in re.findall(r"^#+ (.+)$", card.text, re.M)}
    for link in relative:
        path, _, anchor = link.partition("#")
        assert path in public, f"{link} is not published ({sorted(public)})"
        if anchor:
            assert path == "README.md" and anchor in anchors, link
