"""Publish Style Studio as a Hugging Face Space: python scripts/publish_space.py you/style-studio

Uploads exactly what the Space needs (the app, the package, the shipped assets, the
requirements and the README whose front matter configures the Space) with
`huggingface_hub`'s `upload_folder`, which stores the binaries (the toy model's
`.safetensors`, the demo JPEGs) the way the Hub wants them (Xet/LFS) — a plain `git push`
of this repository would be refused by the Hub for them. The token is the usual one from
`hf auth login`. `--dry-run` lists the files and uploads nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOW = ["app.py", "requirements.txt", "README.md", "style_studio/**", "assets/**"]
IGNORE = ["**/__pycache__/**", "**/*.pyc", "**/.DS_Store"]


def space_files(root: Path = ROOT) -> list[str]:
    """The repository paths the Space gets, chosen by the same rule upload_folder applies."""
    from huggingface_hub.utils import filter_repo_objects

    every = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    return list(filter_repo_objects(every, allow_patterns=ALLOW, ignore_patterns=IGNORE))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo_id", help="the Space, e.g. you/style-studio")
    parser.add_argument("--dry-run", action="store_true", help="list the files only")
    args = parser.parse_args(argv)
    files = space_files()
    if args.dry_run:
        print("\n".join(files))
        print(f"{len(files)} files would be uploaded to the Space {args.repo_id}.")
        return
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(args.repo_id, repo_type="space", space_sdk="gradio", exist_ok=True)
    api.upload_folder(repo_id=args.repo_id, repo_type="space", folder_path=ROOT,
                      allow_patterns=ALLOW, ignore_patterns=IGNORE,
                      commit_message="Publish Style Studio")
    print(f"Uploaded {len(files)} files: https://huggingface.co/spaces/{args.repo_id}")


if __name__ == "__main__":
    main()
