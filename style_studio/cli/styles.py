"""`style create/list/show` and `import`."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from style_studio.studio import Studio

from .common import Bar, Result, find_style, plain


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    style = sub.add_parser("style", help="create, list or show styles")
    verbs = style.add_subparsers(dest="verb", required=True, metavar="{create,list,show}")
    create = verbs.add_parser("create", parents=[common], help="create a style")
    create.add_argument("name")
    create.add_argument("--trigger", default="", help="the trigger word, e.g. inkwash")
    create.add_argument("--family", default="sd15",
                        help="model family: sd15 (default), sdxl, or a flow family such as "
                             "flux1")
    create.add_argument("--notes", default="")
    create.add_argument("--base", default=None,
                        help="this style's base model: hub id, folder, .safetensors, tiny-sd15, "
                             "toy-sd15 (default: as the app picks)")
    create.set_defaults(handler=create_style)
    listing = verbs.add_parser("list", parents=[common], help="list the styles")
    listing.set_defaults(handler=list_styles)
    show = verbs.add_parser("show", parents=[common],
                            help="a style's images, captions, consent and runs")
    show.add_argument("style", nargs="?", help="style id or name (default: the last chosen)")
    show.set_defaults(handler=show_style)

    imp = sub.add_parser("import", parents=[common],
                         help="import image files, folders or zips (with .txt sidecars)")
    imp.add_argument("style", help="style id or name")
    imp.add_argument("paths", nargs="+", type=Path, help="files, folders or .zip archives")
    imp.set_defaults(handler=import_images)


def create_style(studio: Studio, args: argparse.Namespace) -> Result:
    style = studio.styles.create(args.name, trigger=args.trigger, family=args.family,
                                 notes=args.notes,
                                 base_model=args.base or studio.suggested_base_model(args.family))
    return Result({"style": asdict(style)},
                  [f"Created style '{style.name}' ({style.id}), {style.family_label}"
                   + (f", trigger '{style.trigger}'" if style.trigger else "") + "."])


def list_styles(studio: Studio, args: argparse.Namespace) -> Result:
    styles = studio.styles.list()
    rows = [{**asdict(style), "images": studio.images.summary(style.id).total}
            for style in styles]
    lines = [f"{r['id']}  {r['name']}  ({r['family']}, {r['images']} images)" for r in rows]
    return Result({"styles": rows}, lines or ["No styles yet."])


def show_style(studio: Studio, args: argparse.Namespace) -> Result:
    style = find_style(studio, args.style)
    images = studio.images.list(style.id)
    captions = studio.caption_records.for_style(style.id)
    consents = {c.image_id: c for c in studio.consent.for_style(style.id)}
    plan = studio.consent.trainable(style.id)
    runs = studio.training.runs(style.id)
    rows = []
    for image in images:
        caption = captions.get(image.id)
        consent = consents.get(image.id)
        rows.append({"id": image.id, "file": image.filename,
                     "caption": caption.text if caption else "",
                     "caption_status": caption.status if caption else "missing",
                     "consent": consent.badge if consent else "? no record"})
    data = {"style": asdict(style), "base_model": studio.base_model_for(style),
            "images": rows, "trainable": len(plan.included),
            "excluded": [asdict(e) for e in plan.excluded], "gate": plan.summary(),
            "runs": [{"id": r.id, "status": r.shown_status, "step": r.step,
                      "total_steps": r.total_steps} for r in runs]}
    lines = [f"{style.name} ({style.id}) — {style.family_label}, trigger "
             f"'{style.trigger}', base {data['base_model']}",
             plan.summary()]
    lines += [f"  {r['id']}  {r['file']}  [{r['caption_status']}] [{r['consent']}]  "
              f"{r['caption'][:60]}" for r in rows]
    lines += [f"  run {r['id']}: {r['status']} ({r['step']}/{r['total_steps']})"
              for r in data["runs"]]
    return Result(data, lines)


def import_images(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import InvalidInput

    style = find_style(studio, args.style)
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        raise InvalidInput(f"There is no file or folder {missing[0]}.")
    bar = Bar(f"Import into {style.name}", args)
    try:
        report = studio.images.ingest(style.id, [p.expanduser().resolve() for p in args.paths],
                                      progress=bar.update)
    finally:
        bar.close()
    data = plain(report.to_dict())
    data["added"] = [{"id": r.id, "file": r.filename} for r in report.added]
    lines = [f"Imported {len(report.added)} image(s) into '{style.name}'"
             + (f", {report.captions_imported} caption(s) from sidecars" if
                report.captions_imported else "")
             + (f"; {len(report.duplicates)} duplicate(s) skipped" if report.duplicates else "")
             + "."]
    lines += [f"  rejected {name}: {reason}" for name, reason in report.rejected]
    lines += [f"  {notice}" for notice in report.notices]
    return Result(data, lines)
