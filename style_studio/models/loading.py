"""Base models: where they come from, how to load them offline, and a tiny stand-in.

A base model can be a tiny random model built in code (tests, offline demo), a local
diffusers folder, a single `.safetensors` checkpoint (SD 1.x or SDXL whole, or a FLUX.1
transformer whose other parts come from its hub repo's cached snapshot) or a Hugging Face
hub id that is already in the local cache. Loading never touches the network: a missing
model is a `ModelUnavailable` that names the command to fetch it, never a multi-minute
retry loop.
Weights are read from .safetensors only: a folder whose weights are pickles is listed as
unavailable with the command that converts it, because unpickling can run code.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import diffusers
import torch
from accelerate import init_empty_weights
from diffusers import DiffusionPipeline, FluxPipeline, FluxTransformer2DModel
from huggingface_hub import try_to_load_from_cache
from safetensors.torch import load_file

from style_studio.base.errors import InvalidInput, ModelUnavailable
from style_studio.base.family import FAMILIES, TOY_MODELS, Family, check_family
from style_studio.base.files import sha256_file
from style_studio.models.checkpoint_files import (
    PICKLE_SUFFIXES,
    SINGLE_FILE_BASE_REPOS,
    SINGLE_FILE_TYPES,
    WEIGHT_SUFFIXES,
    folder_pickle_message,
    pickle_message,
    pickle_only_components,
    single_file_family,
    single_file_model_type,
)
from style_studio.models.devices import DeviceChoice, pick_device
from style_studio.models.families import FAMILIES as FAMILY_SPECS
from style_studio.models.families import ensure_twin, family_spec
from style_studio.models.families.flux1_file import bfl_to_diffusers
from style_studio.models.tiny import (
    TINY_IDS,
    TINY_LABEL,
    TINY_MARKER,
    TINY_NOTE,
    parse_tiny_id,
    tiny_id,
)
from style_studio.models.toy import TOY_LABEL, ensure_toy_model
from style_studio.models.toy_flow import TOY_FLUX1_LABEL

SourceKind = Literal["tiny", "hub", "folder", "file"]

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

KNOWN_HUB_MODELS: dict[str, tuple[Family, str, str]] = {
    # id: (family, label, approximate download with the patterns of `hf_download_command`)
    "stable-diffusion-v1-5/stable-diffusion-v1-5": ("sd15", "Stable Diffusion 1.5", "4.3 GB"),
    "stabilityai/stable-diffusion-xl-base-1.0": ("sdxl", "Stable Diffusion XL base 1.0", "14 GB"),
    **{ref.hub_id: (spec.key, ref.label, ref.download)  # type: ignore[misc]
       for spec in FAMILY_SPECS.values() if spec.denoiser == "transformer"
       for ref in spec.references},
}
_NO_TOKEN_LIMIT = 10_000
# What a FLUX.1 transformer file needs from its repo's snapshot: every config, tokenizer
# file and the text encoders' and VAE's weights, not the 24 GB transformer it replaces.
_FLUX1_FILE_WEIGHTS = ("text_encoder", "text_encoder_2", "vae")
_FLUX1_FILE_DOWNLOAD = "about 10 GB, mostly the T5 text encoder"


# --------------------------------------------------------------------------- sources


@dataclass
class BaseModelSource:
    """One base model the artist can pick, and whether it can be loaded right now."""

    ref: str
    family: Family
    kind: SourceKind
    label: str
    available: bool
    detail: str


@dataclass
class _Resolved:
    kind: SourceKind
    ref: str
    path: Path | None = None
    tiny: tuple[Family, int] | None = None
    toy: bool = False


def _looks_like_path(ref: str) -> bool:
    return (
        ref.startswith(("/", ".", "~", "\\"))
        or "\\" in ref
        or ref.count("/") > 1
        or Path(ref).suffix.lower() in WEIGHT_SUFFIXES
        or bool(re.match(r"^[A-Za-z]:", ref))
    )


def _resolve(ref: str, models_dir: Path) -> _Resolved:
    """Decide what `ref` names. Existing paths win over hub ids of the same spelling."""
    ref = ref.strip()
    if not ref:
        raise InvalidInput("No base model given.")
    if ref in TOY_MODELS:
        return _Resolved("tiny", ref, Path(models_dir) / ref, toy=True)
    tiny = parse_tiny_id(ref)
    if tiny:
        return _Resolved("tiny", ref, Path(models_dir) / tiny_id(*tiny), tiny)
    candidates = [Path(ref).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(Path(models_dir) / ref)
    for candidate in candidates:
        if candidate.exists():
            kind: SourceKind = "folder" if candidate.is_dir() else "file"
            return _Resolved(kind, ref, candidate.resolve())
    if _HUB_ID_RE.match(ref) and not _looks_like_path(ref):
        return _Resolved("hub", ref)
    kind = "file" if Path(ref).suffix else "folder"
    return _Resolved(kind, ref, candidates[0])


def _hub_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of a hub repo, found without any network access."""
    try:
        cached = try_to_load_from_cache(repo_id, "model_index.json")
    except ValueError:  # not a valid repo id
        return None
    return Path(cached).parent if isinstance(cached, str) else None


def _hub_has_weights(snapshot: Path) -> bool:
    """The denoiser's .safetensors weights are cached (pickled .bin ones are never loaded)."""
    return any(any((snapshot / part).glob("diffusion_pytorch_model*.safetensors"))
               for part in ("unet", "transformer"))


def hf_download_command(repo_id: str) -> str:
    """The exact shell command that fetches what diffusers needs (no EMA/fp16 extras)."""
    return (
        f"hf download {repo_id} --include '*.json' --include '*.txt' "
        "--include '*/*.safetensors' --exclude '*.fp16.*' --exclude '*non_ema*' "
        "--exclude 'safety_checker/*'"
    )


def _read_model_index(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _folder_family(folder: Path) -> Family | None:
    name = str(_read_model_index(folder).get("_class_name", ""))
    if not name:
        return None
    flow = next((spec.key for spec in FAMILY_SPECS.values()
                 if spec.denoiser == "transformer" and spec.pipeline == name), None)
    return flow or ("sdxl" if "XL" in name else "sd15")  # type: ignore[return-value]


def guess_family(ref: str, models_dir: Path) -> Family:
    """Best guess of a ref's family from its contents, else from its name."""
    resolved = _resolve(ref, models_dir)
    if resolved.toy:
        return TOY_MODELS[resolved.ref]
    if resolved.tiny:
        return resolved.tiny[0]
    if resolved.kind == "folder" and resolved.path and resolved.path.is_dir():
        return _folder_family(resolved.path) or "sd15"
    if resolved.kind == "file" and resolved.path and resolved.path.is_file():
        try:
            return SINGLE_FILE_TYPES.get(single_file_model_type(resolved.path), "sd15")
        except InvalidInput:
            return "sd15"
    return "sdxl" if "xl" in ref.lower() else "sd15"


def describe_source(ref: str, family: Family, models_dir: Path) -> BaseModelSource:
    """What `ref` is and whether it can be loaded now, checked without loading weights."""
    check_family(family)
    resolved = _resolve(ref, models_dir)
    if resolved.toy:
        return _describe_toy(resolved, family)
    if resolved.tiny:
        return _describe_tiny(resolved, models_dir)
    if resolved.kind == "hub":
        return _describe_hub(resolved.ref, family)
    assert resolved.path is not None
    if resolved.kind == "folder":
        return _describe_folder(resolved.ref, resolved.path, family)
    return _describe_file(resolved.ref, resolved.path, family)


def _describe_tiny(resolved: _Resolved, models_dir: Path) -> BaseModelSource:
    assert resolved.tiny and resolved.path
    family, seed = resolved.tiny
    shape = {"sd15": "SD 1.5", "sdxl": "SDXL"}.get(family, family_spec(family).label)
    label = f"{TINY_LABEL} · {shape}-shaped" + (f" · seed {seed}" if seed else "")
    saved = (resolved.path / "model_index.json").is_file()
    detail = f"Saved in {resolved.path}" if saved else f"Built on first use into {models_dir}"
    return BaseModelSource(resolved.ref, family, "tiny", label, True, f"{detail}; {TINY_NOTE}.")


# -- the built-in toy models (models/toy.py, toy_flow.py): tiny models pretrained here ----

_TOY_LABELS = {"sd15": TOY_LABEL, "flux1": TOY_FLUX1_LABEL}


def _describe_toy(resolved: _Resolved, family: Family) -> BaseModelSource:
    assert resolved.path is not None
    own = TOY_MODELS[resolved.ref]
    label = _TOY_LABELS[own]
    if family != own:
        return BaseModelSource(resolved.ref, own, "tiny", label, False,
                               f"The toy model {resolved.ref} is {own}-shaped, not {family}.")
    saved = (resolved.path / "model_index.json").is_file()
    detail = f"Saved in {resolved.path}" if saved else "Copied into the workspace on first use"
    return BaseModelSource(resolved.ref, own, "tiny", label, True, detail + ".")


def toy_identity(models_dir: Path, toy_id: str) -> str:
    """A toy model's weights differ by machine only if rebuilt: name them by hash."""
    folder = ensure_toy_model(models_dir, toy_id=toy_id)
    denoiser = "unet" if TOY_MODELS[toy_id] in ("sd15", "sdxl") else "transformer"
    weights = sorted((folder / denoiser).glob("*.safetensors"))
    digest = sha256_file(weights[0])[:16] if weights else "unknown"
    return f"{toy_id}@sha256:{digest}"


def _describe_hub(repo_id: str, family: Family) -> BaseModelSource:
    known = KNOWN_HUB_MODELS.get(repo_id)
    label = f"{known[1]} ({repo_id})" if known else f"{repo_id} (Hugging Face)"
    family = known[0] if known else family
    snapshot = _hub_snapshot(repo_id)
    pickled = pickle_only_components(snapshot) if snapshot else {}
    if snapshot and pickled:
        detail = _hub_pickle_message(repo_id, pickled)
        return BaseModelSource(repo_id, family, "hub", label, False, detail)
    if snapshot and _hub_has_weights(snapshot):
        detail = f"In the local Hugging Face cache (snapshot {snapshot.name[:12]})."
        return BaseModelSource(repo_id, family, "hub", label, True, detail)
    size = f" (about {known[2]})" if known else ""
    detail = f"Not downloaded yet{size}. To fetch it, run: {hf_download_command(repo_id)}"
    return BaseModelSource(repo_id, family, "hub", label, False, detail)


def _hub_pickle_message(repo_id: str, pickled: dict[str, list[str]]) -> str:
    """A cached hub model with pickled weights only: fetch its .safetensors files."""
    return (f"The cached copy of {repo_id} has only pickled weights for "
            f"{', '.join(pickled)}; Style Studio loads .safetensors only, because loading a "
            "pickle can run code. Fetch the .safetensors files with: "
            f"{hf_download_command(repo_id)}")


def _describe_folder(ref: str, path: Path, family: Family) -> BaseModelSource:
    label = f"{path.name} (local folder)"
    if not path.is_dir():
        return BaseModelSource(ref, family, "folder", label, False, f"Not found: {path}")
    if not (path / "model_index.json").is_file():
        detail = f"{path} has no model_index.json, so it is not a diffusers model folder."
        return BaseModelSource(ref, family, "folder", label, False, detail)
    pickled = pickle_only_components(path)
    if pickled:
        return BaseModelSource(ref, _folder_family(path) or family, "folder", label, False,
                               folder_pickle_message(path, pickled))
    found = _folder_family(path) or family
    if found != family:
        detail = f"This is a {found} model, not {family}."
        return BaseModelSource(ref, found, "folder", label, False, detail)
    return BaseModelSource(ref, found, "folder", label, True, f"Diffusers folder {path}")


def _describe_file(ref: str, path: Path, family: Family) -> BaseModelSource:
    label = f"{path.name} (single file)"
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return BaseModelSource(ref, family, "file", label, False, pickle_message(path))
    if not path.is_file():
        return BaseModelSource(ref, family, "file", label, False, f"Not found: {path}")
    try:
        model_type = single_file_model_type(path)
        found = single_file_family(path)
    except InvalidInput as exc:
        return BaseModelSource(ref, family, "file", label, False, str(exc))
    if found != family:
        detail = f"This is a {found} checkpoint, not {family}."
        return BaseModelSource(ref, found, "file", label, False, detail)
    if model_type in SINGLE_FILE_BASE_REPOS:
        repo = SINGLE_FILE_BASE_REPOS[model_type]
        label = f"{path.name} ({KNOWN_HUB_MODELS[repo][1]} single file)"
        snapshot = _hub_snapshot(repo)
        if _base_parts_missing(snapshot):
            return BaseModelSource(ref, found, "file", label, False,
                                   _base_parts_message(path, repo))
        detail = (f"Single-file transformer {path}, with the text encoders and VAE of "
                  f"{repo} from the local Hugging Face cache.")
        return BaseModelSource(ref, found, "file", label, True, detail)
    return BaseModelSource(ref, found, "file", label, True, f"Single-file checkpoint {path}")


def list_base_models(models_dir: Path, extra_refs: Iterable[str] = ()) -> list[BaseModelSource]:
    """Every base model worth offering: tiny ones, well-known hub ids, what is under
    `models_dir`, then `extra_refs`. Nothing is loaded and nothing is downloaded."""
    models_dir = Path(models_dir)
    refs: list[tuple[str, Family]] = [(TINY_IDS[f], f) for f in FAMILIES]
    refs += list(TOY_MODELS.items())
    refs += [(repo_id, known[0]) for repo_id, known in KNOWN_HUB_MODELS.items()]
    refs += [(str(path), guess_family(str(path), models_dir)) for path in _local_models(models_dir)]
    refs += [(ref, guess_family(ref, models_dir)) for ref in extra_refs]
    sources: list[BaseModelSource] = []
    seen: set[str] = set()
    for ref, family in refs:
        if ref not in seen:
            seen.add(ref)
            sources.append(describe_source(ref, family, models_dir))
    return sources


def _local_models(models_dir: Path) -> list[Path]:
    if not models_dir.is_dir():
        return []
    found = []
    for entry in sorted(models_dir.iterdir()):
        if entry.name.startswith(".") or parse_tiny_id(entry.name):
            continue
        if entry.is_dir() and (entry / "model_index.json").is_file():
            if not (entry / TINY_MARKER).is_file():
                found.append(entry)
        elif entry.is_file() and entry.suffix.lower() == ".safetensors":
            found.append(entry)
    return found


# --------------------------------------------------------------------------- loading


def _pipeline_class(family: Family) -> type[DiffusionPipeline]:
    return getattr(diffusers, family_spec(family).pipeline)


def _load_kwargs(family: Family, device: DeviceChoice, skip: tuple[str, ...] = ()
                 ) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dtype": device.dtype, "local_files_only": True,
                              **dict.fromkeys(skip)}
    if family == "sd15":
        # The artist generates from their own style model; the NSFW filter's 1.2 GB
        # weights would also blank random tiny-model outputs.
        kwargs.update(safety_checker=None, requires_safety_checker=False)
    return kwargs


def _finish(pipe: DiffusionPipeline, device: DeviceChoice) -> DiffusionPipeline:
    # dtype was set at load time: casting again with to() would skip the modules some
    # models keep in float32.
    pipe = pipe.to(device.device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def load_pipeline(
    ref: str, family: Family, models_dir: Path, device: DeviceChoice | None = None,
    skip: tuple[str, ...] = (),
) -> DiffusionPipeline:
    """A ready pipeline of `family` for `ref`, loaded from local files only. `skip` names
    components left out (None): a trainer whose text embeddings are all cached never
    loads T5-XXL or Qwen3.

    Raises InvalidInput for things the artist must fix (missing path, pickled checkpoint,
    wrong family) and ModelUnavailable for a hub model that is not downloaded yet.
    """
    check_family(family)
    device = device or pick_device()
    resolved = _resolve(ref, models_dir)
    if resolved.toy:
        if family != TOY_MODELS[resolved.ref]:
            raise InvalidInput(f"{ref} is a {TOY_MODELS[resolved.ref]} model, but {family} "
                               "was asked for.")
        return _load_folder(ensure_toy_model(models_dir, toy_id=resolved.ref), family, device,
                            skip)
    if resolved.tiny:
        tiny_family, seed = resolved.tiny
        if tiny_family != family:
            raise InvalidInput(f"{ref} is a {tiny_family} model, but {family} was asked for.")
        return _load_folder(ensure_twin(family, models_dir, seed), family, device, skip)
    if resolved.kind == "hub":
        return _load_hub(resolved.ref, family, device, skip)
    assert resolved.path is not None
    path = resolved.path
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise InvalidInput(pickle_message(path))
    if not path.exists():
        raise InvalidInput(f"Base model not found: {path} does not exist.")
    if resolved.kind == "file":
        return _load_single_file(path, family, device, skip)
    return _load_folder(path, family, device, skip)


def _load_folder(folder: Path, family: Family, device: DeviceChoice,
                 skip: tuple[str, ...] = ()) -> DiffusionPipeline:
    if not (folder / "model_index.json").is_file():
        singles = sorted(p.name for p in folder.glob("*.safetensors"))
        hint = f" Did you mean the file {singles[0]}?" if singles else ""
        raise InvalidInput(f"{folder} is not a diffusers model folder (no model_index.json).{hint}")
    pickled = pickle_only_components(folder)
    if pickled:  # checked before diffusers opens anything
        raise InvalidInput(folder_pickle_message(folder, pickled))
    found = _folder_family(folder)
    if found and found != family:
        raise InvalidInput(f"{folder.name} is a {found} model, but {family} was asked for.")
    try:
        pipe = _pipeline_class(family).from_pretrained(
            folder, use_safetensors=True, **_load_kwargs(family, device, skip))
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise InvalidInput(f"Could not load the model folder {folder}: {exc}") from exc
    return _finish(pipe, device)


def _load_single_file(path: Path, family: Family, device: DeviceChoice,
                      skip: tuple[str, ...] = ()) -> DiffusionPipeline:
    if path.suffix.lower() != ".safetensors":
        raise InvalidInput(f"{path.name}: single-file models must be .safetensors files.")
    if family not in SINGLE_FILE_TYPES.values():
        raise InvalidInput(f"{path.name}: single-file {family_spec(family).label} checkpoints "
                           "are not supported yet; use the diffusers folder or hub id "
                           f"(for example {family_spec(family).references[0].hub_id}).")
    model_type = single_file_model_type(path)
    found = single_file_family(path)
    if found != family:
        raise InvalidInput(f"{path.name} is a {found} checkpoint, but {family} was asked for.")
    if model_type in SINGLE_FILE_BASE_REPOS:
        return _load_transformer_file(path, SINGLE_FILE_BASE_REPOS[model_type], device,
                                      skip)
    # diffusers needs the base repo's configs; without them in the cache it would go
    # online despite local_files_only, so we check first and pass the folder ourselves.
    config_repo = _config_repo_for(found)
    snapshot = _hub_snapshot(config_repo)
    if snapshot is None:
        raise ModelUnavailable(
            f"To load {path.name}, Style Studio needs the small config files of "
            f"{config_repo} (a few MB). Fetch them with: hf download {config_repo} "
            "--include '*.json' --include '*.txt'   Meanwhile the tiny model "
            f"({TINY_IDS[family]}) lets you try the workflow offline."
        )
    kwargs = _load_kwargs(family, device, skip)
    try:
        pipe = _pipeline_class(family).from_single_file(str(path), config=str(snapshot), **kwargs)
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise InvalidInput(f"Could not load {path.name}: {exc}") from exc
    return _finish(pipe, device)


def _config_repo_for(family: Family) -> str:
    return next(repo for repo, known in KNOWN_HUB_MODELS.items() if known[0] == family)


# -- FLUX.1's single file: the transformer only, the rest from the hub repo's snapshot -----


def _base_parts_missing(snapshot: Path | None) -> list[str]:
    """What a transformer-only file still needs from its repo's snapshot (empty: ready)."""
    if snapshot is None:
        return ["model_index.json"]
    missing = [] if (snapshot / "transformer" / "config.json").is_file() else ["transformer"]
    return missing + [part for part in _FLUX1_FILE_WEIGHTS
                      if not any((snapshot / part).glob("*.safetensors"))]


def base_parts_command(repo_id: str) -> str:
    """The shell command that fetches a repo's configs, tokenizers, text encoders and VAE,
    but not its transformer (the artist's single file replaces it)."""
    weights = " ".join(f"--include '{part}/*.safetensors'" for part in _FLUX1_FILE_WEIGHTS)
    return (f"hf download {repo_id} --include '*.json' --include '*.txt' "
            f"--include '*.model' {weights}")


def _base_parts_message(path: Path, repo_id: str) -> str:
    return (f"{path.name} holds only the FLUX.1 transformer; its text encoders, VAE and "
            f"configs come from {repo_id} in the local Hugging Face cache "
            f"({_FLUX1_FILE_DOWNLOAD}; not the transformer again). Fetch them with: "
            f"{base_parts_command(repo_id)}   (if the download is refused, accept the "
            "model's licence on its Hugging Face page and log in with `hf auth login`.) "
            f"Meanwhile the tiny model ({TINY_IDS['flux1']}) lets you try the workflow offline.")


def _load_transformer_file(path: Path, repo_id: str, device: DeviceChoice,
                           skip: tuple[str, ...] = ()) -> DiffusionPipeline:
    """A FluxPipeline from a BFL-layout transformer file plus `repo_id`'s cached snapshot.

    Checked before anything loads, so diffusers is never asked to look online; the file's
    weights are renamed here (diffusers' own converter assumes the real model's width) and
    loaded strictly, so a file that does not fit the repo's config is an error, not a
    half-random transformer.
    """
    snapshot = _hub_snapshot(repo_id)
    if snapshot is None or _base_parts_missing(snapshot):
        raise ModelUnavailable(_base_parts_message(path, repo_id))
    try:
        transformer = _flux1_transformer(path, snapshot, device.dtype)
        pipe = FluxPipeline.from_pretrained(snapshot, transformer=transformer,
                                            use_safetensors=True,
                                            **_load_kwargs("flux1", device, skip))
    except OSError as exc:  # a snapshot with files missing that the check above cannot see
        raise ModelUnavailable(f"{_base_parts_message(path, repo_id)} ({exc})") from exc
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise InvalidInput(f"Could not load {path.name} as {KNOWN_HUB_MODELS[repo_id][1]}: "
                           f"{exc}") from exc
    return _finish(pipe, device)


def _flux1_transformer(path: Path, snapshot: Path, dtype: torch.dtype) -> FluxTransformer2DModel:
    config = FluxTransformer2DModel.load_config(snapshot, subfolder="transformer",
                                                local_files_only=True)
    state, unknown = bfl_to_diffusers(load_file(str(path)), config)
    if unknown:
        raise InvalidInput(f"{path.name} has weights FLUX.1 has no place for "
                           f"({', '.join(unknown[:3])}); is it another model's file?")
    with init_empty_weights():
        transformer = FluxTransformer2DModel.from_config(config)
    # strict: a missing or extra weight, or a wrong shape, raises (RuntimeError)
    transformer.load_state_dict(state, strict=True, assign=True)
    return transformer.to(dtype).eval()


def _load_hub(repo_id: str, family: Family, device: DeviceChoice,
              skip: tuple[str, ...] = ()) -> DiffusionPipeline:
    missing = ModelUnavailable(
        f"{repo_id} is not downloaded on this machine. Fetch it with: "
        f"{hf_download_command(repo_id)}   Meanwhile the tiny model ({TINY_IDS[family]}) "
        "lets you try the whole workflow offline."
    )
    snapshot = _hub_snapshot(repo_id)
    if snapshot is None:  # checked first: diffusers is never asked to look online
        raise missing
    pickled = pickle_only_components(snapshot)
    if pickled:
        raise ModelUnavailable(_hub_pickle_message(repo_id, pickled))
    if not _hub_has_weights(snapshot):
        raise missing
    try:
        pipe = _pipeline_class(family).from_pretrained(
            repo_id, use_safetensors=True, **_load_kwargs(family, device, skip))
    except (OSError, ValueError) as exc:
        raise missing from exc
    return _finish(pipe, device)


# --------------------------------------------------------------------------- identity


def reference_repo(ref: str, models_dir: Path) -> str | None:
    """The hub model whose licence binds `ref`: the hub id itself, or the repo a known
    single file (e.g. flux1-dev.safetensors) was published in; None when unknown."""
    resolved = _resolve(ref, models_dir)
    if resolved.kind == "hub":
        return resolved.ref
    if resolved.kind == "file" and resolved.path and resolved.path.is_file():
        try:
            return SINGLE_FILE_BASE_REPOS.get(single_file_model_type(resolved.path))
        except InvalidInput:
            return None
    return None


def model_identity(ref: str, models_dir: Path) -> str:
    """A stable name for the exact weights behind `ref`, for cache keys and manifests."""
    resolved = _resolve(ref, models_dir)
    if resolved.toy:
        return toy_identity(models_dir, resolved.ref)
    if resolved.tiny:
        family, seed = resolved.tiny
        return f"{TINY_IDS[family]}@seed{seed}"
    if resolved.kind == "hub":
        snapshot = _hub_snapshot(resolved.ref)
        if snapshot is None:
            raise ModelUnavailable(
                f"{resolved.ref} is not in the local cache. Fetch it with: "
                f"{hf_download_command(resolved.ref)}"
            )
        return f"hub:{resolved.ref}@{snapshot.name}"
    assert resolved.path is not None
    if not resolved.path.exists():
        raise InvalidInput(f"Base model not found: {resolved.path} does not exist.")
    if resolved.kind == "file":
        return f"sha256:{sha256_file(resolved.path)}"
    return f"folder:{_folder_fingerprint(resolved.path)}"


def _folder_fingerprint(folder: Path) -> str:
    """sha256 over model_index.json and each weight file's name, size and mtime:
    cheap enough for multi-GB folders, and changes when any weight file is replaced."""
    digest = hashlib.sha256()
    index = folder / "model_index.json"
    digest.update(index.read_bytes() if index.is_file() else b"")
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in WEIGHT_SUFFIXES:
            stat = path.stat()
            line = f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def text_token_limit(pipe: DiffusionPipeline) -> int:
    """How many tokens of a prompt the text encoder sees (77 for CLIP, bos/eos included)."""
    limit = int(getattr(pipe.tokenizer, "model_max_length", 0) or 0)
    if 0 < limit < _NO_TOKEN_LIMIT:
        return limit
    return int(pipe.text_encoder.config.max_position_embeddings)
