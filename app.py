"""Launch Style Studio: parse flags, open the studio, build the UI, launch. Nothing else."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from style_studio.base.errors import StudioError
from style_studio.base.units import human_size
from style_studio.base.workspace import DEFAULT_HOME, HOME_ENV, Workspace
from style_studio.studio import Studio, StudioConfig


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Style Studio: train a style LoRA, traceably.")
    parser.add_argument("--host", default=os.environ.get("STYLE_STUDIO_HOST", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("STYLE_STUDIO_PORT", "7860")))
    parser.add_argument("--workspace", default=os.environ.get(HOME_ENV, DEFAULT_HOME),
                        help=f"folder holding all styles and the database (env {HOME_ENV})")
    parser.add_argument("--base-model", default=os.environ.get("STYLE_STUDIO_BASE_MODEL"),
                        help="default base model: hub id, diffusers folder or .safetensors")
    return parser.parse_args(argv)


def clear_leftovers(workspace: Workspace) -> None:
    """Empty the workspace's own upload cache before Gradio starts: with the workspace lock
    held, whatever is there was left by an earlier run (an upload cancelled before its
    import, a copy served to a page long closed), and fewer copies is safer for erasure.
    A GRADIO_TEMP_DIR set elsewhere by the user is theirs and left alone."""
    if Path(os.environ["GRADIO_TEMP_DIR"]).resolve() != workspace.upload_cache.resolve():
        return
    files, size = workspace.empty_upload_cache()
    if files:
        print(f"Style Studio: cleared {files} file(s), {human_size(size)}, that an earlier "
              f"run left in {workspace.upload_cache}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    workspace = Workspace(Path(args.workspace).resolve()).ensure()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio reads its cache folder at import: keep it inside the workspace so that an
    # erasure can find every copy of an image the app placed there.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace.upload_cache))
    try:
        studio = Studio(workspace, StudioConfig(default_base_model=args.base_model))
    except StudioError as exc:  # e.g. the workspace is open elsewhere, or its store is damaged
        sys.exit(f"Style Studio could not start: {exc}")
    clear_leftovers(workspace)
    from style_studio.ui.shell import build_ui, launch_options
    demo = build_ui(studio)
    print(f"Style Studio: workspace {workspace.root}")
    demo.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, **launch_options(studio, args.host))


if __name__ == "__main__":
    main()
