"""What every subcommand shares: exit codes, the workspace's studio, finding a style or run,
following a job with a progress bar, and printing text or JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the facade loads torch: only once a command runs, never for --help
    from style_studio.studio import Job, Run, Studio

# The facade's DEFAULT_HOME and HOME_ENV (tests/test_cli.py checks they agree).
HOME_ENV = "STYLE_STUDIO_HOME"
DEFAULT_HOME = "workspace"

# Exit codes (documented in `style-studio --help` and the README).
OK = 0
ERROR = 1  # something the user can fix: the message says what
USAGE = 2  # bad arguments
MODEL_UNAVAILABLE = 3  # a base or captioning model is not on this machine
BUSY = 4  # the workspace is open in another Style Studio (the app, another command)
CANCELLED = 130  # Ctrl-C, or the job was cancelled

EXIT_CODES = {OK: "done", ERROR: "an error you can fix (the message says what)",
              USAGE: "bad arguments", MODEL_UNAVAILABLE: "a model is not on this machine",
              BUSY: "the workspace is open in another Style Studio",
              CANCELLED: "cancelled (Ctrl-C); a training keeps its last checkpoint"}


class Cancelled(Exception):
    """Ctrl-C while a job ran (the job was asked to stop and has stopped)."""


@dataclass
class Result:
    """What a command prints: `lines` for a person, `data` for --json."""

    data: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    code: int = OK


def default_workspace() -> str:
    return os.environ.get(HOME_ENV, DEFAULT_HOME)


def add_common(parser: argparse.ArgumentParser, suppress: bool = True) -> None:
    """--workspace, --base-model, --json, --quiet on the top parser and on each subcommand
    (either place works: `style-studio --json runs` or `style-studio runs --json`)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--workspace", default=default,
                        help=f"the workspace folder (default: ${HOME_ENV} or ./{DEFAULT_HOME})")
    parser.add_argument("--base-model", default=default,
                        help="default base model: hub id, diffusers folder or .safetensors")
    parser.add_argument("--json", action="store_true", default=default,
                        help="print one JSON object (results, or the error) on stdout")
    parser.add_argument("--quiet", "-q", action="store_true", default=default,
                        help="no progress bar")


def fill_common(args: argparse.Namespace) -> argparse.Namespace:
    for name, value in (("workspace", None), ("base_model", None), ("json", False),
                        ("quiet", False)):
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.workspace = args.workspace or default_workspace()
    return args


@contextmanager
def open_studio(args: argparse.Namespace, processes: Any = None) -> Iterator[Studio]:
    """The workspace's studio, holding its lock (a busy workspace raises WorkspaceBusy);
    `processes`: the main process of a multi-process launch (`accelerate launch`)."""
    from style_studio.studio import Studio, StudioConfig

    with Studio.open(Path(args.workspace).expanduser(),
                     StudioConfig(default_base_model=args.base_model,
                                  processes=processes)) as studio:
        yield studio


def find_style(studio: Studio, ref: str | None):
    """A style by id or by name (case ignored); none given = the last style chosen."""
    from style_studio.studio import NotFound

    if not ref:
        current = studio.styles.current()
        if current is None:
            raise NotFound("There is no style yet: create one with "
                           "'style-studio style create NAME'.")
        return current
    styles = studio.styles.list()
    for style in styles:
        if style.id == ref:
            return style
    folded = ref.casefold().strip()
    for style in styles:
        if style.name.casefold() == folded:
            return style
    names = ", ".join(f"'{s.name}'" for s in styles) or "none yet"
    raise NotFound(f"No style is called or numbered '{ref}' (styles: {names}).")


def find_run(studio: Studio, ref: str) -> Run:
    """A run by id; 'latest' = the newest run of any style."""
    from style_studio.studio import NotFound

    if ref == "latest":
        runs = [r for s in studio.styles.list() for r in studio.training.runs(s.id)]
        if not runs:
            raise NotFound("There is no training run yet: start one with 'style-studio train'.")
        return max(runs, key=lambda r: r.created_at)
    return studio.training.get_run(ref)


class Bar:
    """A tqdm bar with ETA on stderr fed from a job's progress (0..1) and message;
    silent under --json or --quiet."""

    def __init__(self, label: str, args: argparse.Namespace):
        self._bar = None
        if not (args.json or args.quiet):
            from tqdm import tqdm

            self._bar = tqdm(total=1000, desc=label, file=sys.stderr, leave=True,
                             dynamic_ncols=True,
                             bar_format="{desc}: {percentage:3.0f}%|{bar}| "
                                        "{elapsed}<{remaining} {postfix}")

    def update(self, fraction: float, message: str = "") -> None:
        if self._bar is None:
            return
        target = int(max(0.0, min(1.0, fraction)) * 1000)
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)
        if message:
            self._bar.set_postfix_str(message[:70], refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def follow(studio: Studio, job: Job, args: argparse.Namespace, label: str,
           cancel: Callable[[], Any] | None = None, poll_s: float = 0.2) -> Job:
    """Wait for `job` with a progress bar; Ctrl-C asks it to stop (a training saves a
    checkpoint first) and raises Cancelled; a failed job raises its own message."""
    from style_studio.studio import JobCancelled, StudioError

    bar = Bar(label, args)
    try:
        while True:
            current = studio.jobs.get(job.id)
            bar.update(current.progress, current.message)
            if current.finished:
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        bar.close()
        print("Stopping… (the job finishes its current step)", file=sys.stderr)
        (cancel or (lambda: studio.jobs.cancel(job.id)))()
        studio.jobs.wait(job.id, timeout=300)
        raise Cancelled(f"{job.title or job.kind}: cancelled.") from None
    if current.status == "done":
        bar.update(1.0)
    bar.close()
    if current.status == "failed":
        raise StudioError(current.error or f"{current.title}: failed.")
    if current.status in ("cancelled", "interrupted"):
        raise JobCancelled(current.message or f"{current.title}: {current.status}.")
    return current


def emit(result: Result, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps({"ok": result.code == OK, **result.data}, default=str, indent=2))
    else:
        for line in result.lines:
            print(line)


def plain(value: Any) -> Any:
    """Paths and other objects as JSON-friendly values."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
