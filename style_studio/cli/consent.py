"""`consent set/show/erase/export`: the Consent tab from the shell."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from style_studio.studio import Studio

from .common import Result, find_style

FIELDS = ("creator", "relationship", "source", "licence", "licence_text", "evidence_text",
          "status", "date", "notes")


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    consent = sub.add_parser("consent", help="record, show, erase or export consent")
    verbs = consent.add_subparsers(dest="verb", required=True,
                                   metavar="{set,show,erase,export}")
    set_ = verbs.add_parser(
        "set", parents=[common],
        help="record creator, licence and permission (all images, or --images)",
        description="Only the fields given change; --own-work is the shortcut 'all of "
                    "these are my own work' (cleared, own work, all rights reserved).")
    set_.add_argument("style")
    set_.add_argument("--images", nargs="+", default=None, help="only these image ids")
    set_.add_argument("--own-work", action="store_true",
                      help="my own work: needs --creator (your name)")
    set_.add_argument("--creator")
    set_.add_argument("--relationship", help="own, client, licensed, public-domain or other")
    set_.add_argument("--licence", "--license", dest="licence",
                      help="an SPDX id, e.g. CC-BY-4.0, CC0-1.0 or LicenseRef-OwnWork")
    set_.add_argument("--licence-text", help="the terms, for a custom licence")
    set_.add_argument("--status", help="cleared, pending, refused or revoked")
    set_.add_argument("--source", help="where the image came from")
    set_.add_argument("--evidence-text", help="what proves the permission")
    set_.add_argument("--date", help="YYYY-MM-DD")
    set_.add_argument("--notes")
    set_.set_defaults(handler=set_consent)

    show = verbs.add_parser("show", parents=[common],
                            help="each image's consent and what the training gate allows")
    show.add_argument("style")
    show.set_defaults(handler=show_consent)

    erase = verbs.add_parser(
        "erase", parents=[common],
        help="honour a deletion request: every copy goes, runs that used it are flagged")
    erase.add_argument("style")
    which = erase.add_mutually_exclusive_group(required=True)
    which.add_argument("--images", nargs="+", help="image ids")
    which.add_argument("--creator", help="every image recorded as made by this person")
    erase.add_argument("--reason", required=True, help="why (kept in the audit log)")
    erase.set_defaults(handler=erase_images)

    export = verbs.add_parser(
        "export", parents=[common],
        help="the ledger as .csv or .json, or --dataset: the cleared images as a Hub "
             "image folder")
    export.add_argument("style")
    export.add_argument("dest", type=Path, help="ledger file (.csv/.json) or dataset folder")
    export.add_argument("--dataset", action="store_true",
                        help="write the cleared images, metadata.jsonl and a card (and a zip)")
    export.set_defaults(handler=export_consent)


def set_consent(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.consent.records import ConsentRecord
    from style_studio.studio import InvalidInput

    style = find_style(studio, args.style)
    if args.own_work:
        report = studio.consent.own_work(style.id, args.creator or "", args.images)
    else:
        given = {name: getattr(args, name) for name in FIELDS
                 if getattr(args, name) is not None}
        if not given:
            raise InvalidInput("Say what to record: --own-work --creator NAME, or fields "
                               "such as --creator, --licence, --status cleared.")
        record = ConsentRecord(**given)
        if args.images:
            report = studio.consent.set(args.images, record, fields=list(given))
        else:
            report = studio.consent.set_all(style.id, record, fields=list(given))
    plan = studio.consent.trainable(style.id)
    return Result({**asdict(report), "trainable": len(plan.included), "gate": plan.summary()},
                  [report.summary(), *(f"  skipped {i}: {why}" for i, why in report.skipped),
                   plan.summary()])


def show_consent(studio: Studio, args: argparse.Namespace) -> Result:
    style = find_style(studio, args.style)
    rows = [{"image": c.image_id, "file": c.filename, "badge": c.badge, "saved": c.saved,
             **asdict(c.record)} for c in studio.consent.for_style(style.id)]
    plan = studio.consent.trainable(style.id)
    lines = [f"{r['image']}  {r['badge']}  {r['file']}  {r['creator'] or '-'}  "
             f"{r['licence'] or '-'}" for r in rows]
    return Result({"images": rows, "trainable": len(plan.included),
                   "excluded": [asdict(e) for e in plan.excluded],
                   "obligations": plan.obligations, "gate": plan.summary()},
                  [*lines, plan.summary()])


def erase_images(studio: Studio, args: argparse.Namespace) -> Result:
    style = find_style(studio, args.style)
    if args.creator:
        report = studio.consent.erase_creator(args.creator, args.reason, style.id)
    else:
        report = studio.consent.erase(args.images, args.reason)
    data = {"erased": [asdict(r) for r in report.erased],
            "failed": [list(f) for f in report.failed], "flagged_runs": report.flagged_runs}
    return Result(data, [report.summary(), *(f"  {i}: {why}" for i, why in report.failed)],
                  code=1 if report.failed and not report.erased else 0)


def export_consent(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import InvalidInput

    style = find_style(studio, args.style)
    dest = args.dest.expanduser()
    if args.dataset:
        export = studio.consent.export_dataset(style.id, dest)
        return Result({"folder": str(export.folder), "zip": str(export.archive),
                       "images": export.image_count, "left_out": export.left_out},
                      [export.summary(), f"  {export.folder}", f"  {export.archive}"])
    if dest.suffix.lower() not in (".csv", ".json"):
        raise InvalidInput(f"Name the ledger file .csv or .json ({dest.name}), or add "
                           "--dataset to export the images as a dataset folder.")
    path = studio.consent.export_ledger(style.id, dest)
    return Result({"path": str(path)}, [f"Wrote the consent ledger of '{style.name}' to "
                                        f"{path}."])
