"""Base models load from .safetensors only: a diffusers folder with pickled weights is
listed as unavailable with the command that converts it, and refused when loaded, before
anything in the pickle can run."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file

from style_studio.base.errors import InvalidInput, ModelUnavailable
from style_studio.models.devices import pick_device
from style_studio.models.loading import describe_source, list_base_models, load_pipeline
from style_studio.models.tiny import TINY_MARKER, ensure_tiny_model
from style_studio.models.weight_conversion import convert_folder, main, safetensors_name
from style_studio.studio import Studio

CONVERT = "python -m style_studio.models.weight_conversion"


class Payload:
    """Unpickling this runs `open(marker, "w")`: what a booby-trapped checkpoint does."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return ensure_tiny_model("sd15", tmp_path_factory.mktemp("models"))


def _copy(tiny_folder: Path, target: Path) -> Path:
    shutil.copytree(tiny_folder, target)
    (target / TINY_MARKER).unlink()  # an ordinary local folder, not the built-in model
    return target


def _pickle_component(folder: Path, component: str, payload: Payload | None = None) -> Path:
    """Replace a component's .safetensors with the pickled .bin older folders ship."""
    (source,) = (folder / component).glob("*.safetensors")
    state: dict = dict(load_file(source))
    if payload is not None:
        state["payload"] = payload
    target = source.with_name(
        "pytorch_model.bin" if source.name == "model.safetensors" else source.stem + ".bin")
    torch.save(state, target)
    source.unlink()
    return target


@pytest.fixture
def booby_trapped(tmp_path, tiny_folder) -> tuple[Path, Path]:
    """(models dir holding a folder whose UNet is a pickle with a payload, marker path)."""
    marker = tmp_path / "PAYLOAD-RAN"
    models = tmp_path / "workspace" / "models"
    folder = _copy(tiny_folder, models / "old-style-sd15")
    _pickle_component(folder, "unet", Payload(marker))
    return folder, marker


def _says_what_to_do(message: str, folder: Path) -> None:
    lowered = message.lower()
    assert "pickle" in lowered and ".safetensors" in message
    assert "can run" in lowered  # why it is refused
    assert "unet" in message and "diffusion_pytorch_model.bin" in message  # what is wrong
    assert f"{CONVERT} {folder}" in message  # the command that fixes it


def test_the_payload_is_live(tmp_path):
    """Guard against a toothless test: unpickling the same kind of file does run it."""
    marker = tmp_path / "ran"
    torch.save({"payload": Payload(marker)}, tmp_path / "trap.bin")
    torch.load(tmp_path / "trap.bin", weights_only=False)
    assert marker.exists()


def test_pickled_unet_folder_is_listed_unavailable_and_refused(booby_trapped):
    folder, marker = booby_trapped
    models = folder.parent
    source = describe_source(str(folder), "sd15", models)
    assert not source.available and source.kind == "folder" and source.family == "sd15"
    _says_what_to_do(source.detail, folder)
    listed = {s.ref: s for s in list_base_models(models)}
    assert not listed[str(folder)].available
    with pytest.raises(InvalidInput) as caught:
        load_pipeline(str(folder), "sd15", models, pick_device("cpu"))
    _says_what_to_do(str(caught.value), folder)
    assert not marker.exists()


def test_the_studio_lists_it_unavailable_and_will_not_train_on_it(booby_trapped):
    folder, marker = booby_trapped
    with Studio.open(folder.parent.parent) as studio:
        assert folder.parent == studio.workspace.models_dir
        listed = {s.ref: s for s in studio.base_models("sd15")}
        assert not listed[str(folder)].available
        assert studio.suggested_base_model("sd15") != str(folder)
        style = studio.styles.create("Old", trigger="oldstyle", family="sd15")
        with pytest.raises(ModelUnavailable, match="safetensors"):
            studio.training.start(style.id, base_model=str(folder))
    assert not marker.exists()


def test_converter_refuses_the_payload_without_running_it(booby_trapped, capsys):
    folder, marker = booby_trapped
    with pytest.raises(InvalidInput, match="not converted"):
        convert_folder(folder)
    assert main([str(folder)]) == 1
    assert "nothing in it was run" in capsys.readouterr().err
    assert not marker.exists()
    assert not list((folder / "unet").glob("*.safetensors"))


def test_converted_folder_loads_the_same_weights(tmp_path, tiny_folder, capsys):
    folder = _copy(tiny_folder, tmp_path / "models" / "converted")
    _pickle_component(folder, "unet")
    _pickle_component(folder, "text_encoder")
    assert not describe_source(str(folder), "sd15", folder.parent).available
    assert main([str(folder)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert (folder / "text_encoder" / "model.safetensors").is_file()
    assert describe_source(str(folder), "sd15", folder.parent).available
    pipe = load_pipeline(str(folder), "sd15", folder.parent, pick_device("cpu"))
    original = load_file(tiny_folder / "unet" / "diffusion_pytorch_model.safetensors")
    loaded = pipe.unet.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in original.items())
    assert convert_folder(folder) == []  # nothing left to convert


def test_safetensors_names_are_the_ones_the_loaders_look_for():
    assert safetensors_name("diffusion_pytorch_model.bin") == "diffusion_pytorch_model.safetensors"
    assert safetensors_name("pytorch_model.bin") == "model.safetensors"
    assert safetensors_name("pytorch_model-00001-of-00002.bin") == \
        "model-00001-of-00002.safetensors"
    assert safetensors_name("diffusion_pytorch_model.bin.index.json") == \
        "diffusion_pytorch_model.safetensors.index.json"


def test_cached_hub_model_with_pickled_weights_is_unavailable(tmp_path, tiny_folder, monkeypatch):
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--old-sd"
    snapshot = _copy(tiny_folder, repo / "snapshots" / commit)
    marker = tmp_path / "PAYLOAD-RAN"
    _pickle_component(snapshot, "unet", Payload(marker))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    source = describe_source("someone/old-sd", "sd15", tmp_path)
    assert not source.available and "hf download someone/old-sd" in source.detail
    assert "pickle" in source.detail
    with pytest.raises(ModelUnavailable, match="safetensors"):
        load_pipeline("someone/old-sd", "sd15", tmp_path, pick_device("cpu"))
    assert not marker.exists()
