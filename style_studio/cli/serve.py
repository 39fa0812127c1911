"""`style-studio serve` (and `app.py`): parse flags, open the studio (or the visitors'
studios), build the UI, launch. Gradio is imported only here, and only when serving."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .common import BUSY, DEFAULT_HOME, ERROR, HOME_ENV

if TYPE_CHECKING:
    from style_studio.studio import Workspace


def add_flags(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    """The app's flags, the same for `app.py` and `style-studio serve`."""
    parser.add_argument("--host", default=None,
                        help="address to listen on (default 127.0.0.1: this machine only; "
                             "0.0.0.0 on a Space)")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--workspace", default=env.get(HOME_ENV, DEFAULT_HOME),
                        help=f"folder holding all styles and the database (env {HOME_ENV})")
    parser.add_argument("--base-model", default=env.get("STYLE_STUDIO_BASE_MODEL"),
                        help="default base model: hub id, diffusers folder or .safetensors")
    parser.add_argument("--space", action=argparse.BooleanOptionalAction,
                        default=bool(env.get("SPACE_ID")),
                        help="public demo mode: a workspace per visitor and demo limits "
                             "(on by itself on a Hugging Face Space)")


def resolve(args: argparse.Namespace, env: Mapping[str, str]) -> argparse.Namespace:
    """Flags first, then the environment: a Hugging Face Space sets SPACE_ID, SPACE_HOST,
    GRADIO_SERVER_NAME and GRADIO_SERVER_PORT; at home the app listens on 127.0.0.1."""
    local = "0.0.0.0" if args.space else "127.0.0.1"
    args.host = args.host or env.get("STYLE_STUDIO_HOST") or env.get("GRADIO_SERVER_NAME") \
        or local
    args.port = args.port or int(env.get("STYLE_STUDIO_PORT") or env.get("GRADIO_SERVER_PORT")
                                 or 7860)
    return args


def parse_args(argv: list[str] | None = None,
               env: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The flags of `app.py`."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description="Style Studio: train a style LoRA, traceably.")
    add_flags(parser, env)
    return resolve(parser.parse_args(argv), env)


def clear_leftovers(workspace: Workspace) -> None:
    """Empty the workspace's own upload cache before Gradio starts: with the workspace lock
    held, whatever is there was left by an earlier run (an upload cancelled before its
    import, a copy served to a page long closed), and fewer copies is safer for erasure.
    A GRADIO_TEMP_DIR set elsewhere by the user is theirs and left alone."""
    from style_studio.studio import human_size

    if Path(os.environ["GRADIO_TEMP_DIR"]).resolve() != workspace.upload_cache.resolve():
        return
    files, size = workspace.empty_upload_cache()
    if files:
        print(f"Style Studio: cleared {files} file(s), {human_size(size)}, that an earlier "
              f"run left in {workspace.upload_cache}")


def serve(args: argparse.Namespace) -> None:
    """Launch the app; returns when the server stops. A busy or damaged workspace exits
    with the studio's own sentence."""
    from style_studio.studio import Studio, StudioConfig, StudioError, Workspace

    workspace = Workspace(Path(args.workspace).expanduser().resolve()).ensure()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio reads its cache folder at import: keep it inside the workspace so that an
    # erasure can find every copy of an image the app placed there.
    os.environ.setdefault("GRADIO_TEMP_DIR", str(workspace.upload_cache))
    source: Any
    if args.space:
        source = _visitors(workspace)
    else:
        try:
            studio = Studio(workspace, StudioConfig(default_base_model=args.base_model))
        except StudioError as exc:  # e.g. the workspace is open elsewhere, or damaged
            _could_not_start(exc)
        clear_leftovers(workspace)
        from style_studio.ui.studios import OneStudio
        source = OneStudio(studio)
    from style_studio.ui.shell import build_ui, launch_options
    demo = build_ui(source)
    mode = "public demo (a workspace per visitor)" if args.space else "workspace"
    print(f"Style Studio: {mode} {workspace.root}, listening on {args.host}:{args.port}")
    demo.queue(default_concurrency_limit=4).launch(
        server_name=args.host, server_port=args.port, **launch_options(source, args.host))


def main(argv: list[str] | None = None) -> None:
    """`python app.py [flags]`."""
    serve(parse_args(argv))


def _visitors(workspace: Workspace) -> Any:
    """Space mode: the workspace holds the visitors' folders and the shared toy model; one
    process owns it (its lock), and nothing an earlier process served is kept."""
    from style_studio.studio import TOY_ID, DemoLimits, StudioConfig, StudioError, WorkspaceLock

    lock = WorkspaceLock(workspace.root)
    try:
        lock.acquire()
    except StudioError as exc:
        _could_not_start(exc)
    clear_leftovers(workspace)
    from style_studio.ui.studios import VisitorStudios
    from style_studio.visitors.registry import Visitors
    visitors = Visitors(workspace.root, Path(os.environ["GRADIO_TEMP_DIR"]),
                        StudioConfig(default_base_model=TOY_ID, limits=DemoLimits()))
    visitors.start_sweeping()
    return VisitorStudios(visitors)


def _could_not_start(exc: Exception) -> NoReturn:
    """The studio's sentence on stderr; exit 4 when another process holds the workspace
    (as every other command), else 1."""
    from style_studio.studio import WorkspaceBusy

    print(f"Style Studio could not start: {exc}", file=sys.stderr)
    sys.exit(BUSY if isinstance(exc, WorkspaceBusy) else ERROR)
