"""The `style-studio` command: the flow of the app from the shell, a thin layer over the
`Studio` facade like the UI (it imports from the core only `studio` and `*.records`; `serve`
alone reaches the UI, and gradio loads only then). One module per group of subcommands."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from . import captions, consent, demo, playground, publish, serve, styles, training
from .common import (
    BUSY,
    CANCELLED,
    ERROR,
    EXIT_CODES,
    MODEL_UNAVAILABLE,
    OK,
    USAGE,
    Cancelled,
    add_common,
    emit,
    fill_common,
    open_studio,
)

if TYPE_CHECKING:  # the facade loads torch: only once a command runs
    from style_studio.studio import Processes

PROG = "style-studio"
EPILOG = ("Exit codes: " + "; ".join(f"{code} {text}" for code, text in EXIT_CODES.items())
          + ".\nErrors are one sentence on stderr (with --json, also {\"ok\": false, "
          "\"error\": …} on stdout). The command takes the workspace's lock: it refuses to "
          "run beside the app or another command on the same workspace.")


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one sentence and exit code 2, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        text = message[:1].upper() + message[1:]
        self.exit(USAGE, f"{self.prog}: {text.rstrip('.')}. See '{self.prog} --help'.\n")


def build_parser() -> Parser:
    top = Parser(prog=PROG, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                 description="Style Studio from the shell: train a personal style LoRA with "
                             "traceable consent, licences and provenance.")
    top.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_common(top, suppress=False)
    common = Parser(add_help=False)
    add_common(common)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    app = sub.add_parser("serve", help="open the app in the browser (what app.py starts)")
    serve.add_flags(app, os.environ)
    app.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    app.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    for group in (styles, captions, consent, training, publish, playground, demo):
        group.register(sub, common)
    return top


def _version() -> str:
    from style_studio import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (see EXIT_CODES)."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    if args.command == "serve":
        serve.serve(serve.resolve(args, os.environ))
        return OK
    args = fill_common(args)
    # Before the libraries load: their notices and loading bars are not for the artist;
    # the command draws one bar per job.
    for name, value in (("TRANSFORMERS_VERBOSITY", "error"), ("DIFFUSERS_VERBOSITY", "error"),
                        ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
        os.environ.setdefault(name, value)
    from style_studio.studio import (
        JobCancelled,
        ModelUnavailable,
        Processes,
        StudioError,
        WorkspaceBusy,
    )

    # Under `accelerate launch` (several processes) only the main process runs the command;
    # for `train` the others train its run with it (see _follow).
    processes = Processes.from_env()
    if processes.distributed and not processes.main:
        return _follow(args, processes)
    team = processes if args.command == "train" else None
    try:
        with open_studio(args, team) as studio:
            result = args.handler(studio, args)
        emit(result, args)
        return result.code
    except WorkspaceBusy as exc:
        return _fail(args, BUSY, str(exc))
    except ModelUnavailable as exc:
        return _fail(args, MODEL_UNAVAILABLE, str(exc))
    except (Cancelled, JobCancelled) as exc:
        return _fail(args, CANCELLED, str(exc))
    except KeyboardInterrupt:
        return _fail(args, CANCELLED, "Cancelled.")
    except StudioError as exc:
        return _fail(args, ERROR, str(exc))
    except OSError as exc:  # a folder it cannot write, a disk that is full
        return _fail(args, ERROR, f"{exc.strerror or exc}"
                     + (f": {exc.filename}" if exc.filename else "") + ".")
    except Exception as exc:  # a bug: one line, the traceback only when asked for
        if os.environ.get("STYLE_STUDIO_DEBUG"):
            raise
        return _fail(args, ERROR, f"Unexpected error ({type(exc).__name__}: {exc}). Run "
                                  "again with STYLE_STUDIO_DEBUG=1 to see where.")
    finally:
        if team is not None:
            team.release()  # processes still waiting for a run: there is none
            team.close()


def _follow(args: argparse.Namespace, processes: Processes) -> int:
    """A non-main process of a launch: trains the main process's run with it, without
    opening the workspace (the main process holds its lock and writes everything) and
    silently (the main process reports, and its exit code is the launch's). Ctrl-C is left
    to the main process, which tells the others to stop at the next step."""
    if args.command != "train":
        return OK
    from style_studio.studio import StudioError, follow_training

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        follow_training(processes)
        return OK
    except Exception as exc:  # this process's alone: say so, naming it
        if os.environ.get("STYLE_STUDIO_DEBUG"):
            raise
        text = str(exc) if isinstance(exc, StudioError) else (
            f"Unexpected error ({type(exc).__name__}: {exc}).")
        print(f"{PROG} (process {processes.rank}): {text}", file=sys.stderr)
        return ERROR
    finally:
        processes.close()


def _fail(args: argparse.Namespace, code: int, message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"ok": False, "error": message, "exit_code": code}))
    return code


__all__ = ["BUSY", "CANCELLED", "ERROR", "MODEL_UNAVAILABLE", "OK", "USAGE", "main"]
