"""Sign a run's LoRA and a Playground-like output by hand, with the workspace identity
(`<workspace>/credentials/`), as the Playground and the trainer's export will."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from style_studio.base.files import sha256_file
from style_studio.credentials.identity import signing_identity
from style_studio.credentials.sign import LoraFacts, OutputFacts, sign_lora, sign_output
from style_studio.training.export import DIFFUSERS_NAME

SIGNER = "Ana Artist"


def sign_run_and_output(workspace: Path, run_dir: Path, run_id: str, dest: Path,
                        style_name: str = "Test shapes") -> Path:
    """Sign the run's diffusers LoRA (a `.c2pa` beside it) and write a signed PNG made
    "with" it at `dest`; the identity is made on first use, as the app would."""
    identity = signing_identity(workspace / "credentials", SIGNER)  # Workspace.credentials_dir
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    lora = run_dir / "lora" / DIFFUSERS_NAME
    sign_lora(lora, LoraFacts.from_manifest(manifest, sha256_file(manifest_path)), identity)
    dest.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(dest)
    facts = OutputFacts(prompt="shapestyle, a house", base_model="tiny-sd15",
                        lora_path=lora, run_id=run_id, checkpoint="final", lora_scale=1.0,
                        manifest_sha256=sha256_file(manifest_path), style_name=style_name,
                        created_at="2026-01-01T10:00:00+00:00")
    sign_output(dest, facts, identity)
    return dest
