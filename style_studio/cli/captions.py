"""`caption list/auto/set/approve/export/import`: the Captions tab from the shell."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from style_studio.studio import Studio

from .common import Result, find_style, follow


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    caption = sub.add_parser("caption", help="auto-caption, edit, approve, export or import "
                                             "captions")
    verbs = caption.add_subparsers(dest="verb", required=True,
                                   metavar="{list,auto,set,approve,export,import}")
    listing = verbs.add_parser("list", parents=[common], help="each image's caption")
    listing.add_argument("style")
    listing.set_defaults(handler=list_captions)

    auto = verbs.add_parser("auto", parents=[common],
                            help="caption the images with a model (drafts)")
    auto.add_argument("style")
    auto.add_argument("--model", default=None,
                      help="captioner: a hub id in the local cache, a folder, or a tiny one "
                           "(default: the best one on this machine)")
    auto.add_argument("--images", nargs="+", default=None, help="only these image ids")
    auto.add_argument("--overwrite", action="store_true", help="replace existing drafts")
    auto.add_argument("--replace-approved", action="store_true",
                      help="also replace approved captions")
    auto.add_argument("--detailed", action="store_true", help="longer descriptions")
    auto.add_argument("--template", default=None,
                      help="where the model's words go (default '[trigger], {caption}')")
    auto.set_defaults(handler=auto_caption)

    set_ = verbs.add_parser("set", parents=[common], help="write one image's caption")
    set_.add_argument("image", help="image id")
    set_.add_argument("text")
    set_.add_argument("--approve", action="store_true", help="approve it as well")
    set_.set_defaults(handler=set_caption)

    approve = verbs.add_parser("approve", parents=[common],
                               help="approve captions (all that have words, or --images)")
    approve.add_argument("style")
    approve.add_argument("--images", nargs="+", default=None, help="only these image ids")
    approve.set_defaults(handler=approve_captions)

    export = verbs.add_parser("export", parents=[common],
                              help="write <style>-captions.zip of .txt sidecars")
    export.add_argument("style")
    export.add_argument("dest", type=Path, help="folder to write the zip into")
    export.add_argument("--approved-only", action="store_true")
    export.add_argument("--with-images", action="store_true", help="put the images in too")
    export.set_defaults(handler=export_sidecars)

    imp = verbs.add_parser("import", parents=[common],
                           help="read .txt sidecars (files or zips) as draft captions")
    imp.add_argument("style")
    imp.add_argument("paths", nargs="+", type=Path)
    imp.add_argument("--replace-approved", action="store_true")
    imp.set_defaults(handler=import_sidecars)


def list_captions(studio: Studio, args: argparse.Namespace) -> Result:
    style = find_style(studio, args.style)
    rows = [{"image": r.image_id, "file": r.filename, "status": r.status, "text": r.text}
            for r in studio.captions.rows(style.id)]
    return Result({"captions": rows},
                  [f"{r['image']}  [{r['status']}]  {r['file']}: {r['text']}" for r in rows]
                  or ["This style has no images yet."])


def auto_caption(studio: Studio, args: argparse.Namespace) -> Result:
    style = find_style(studio, args.style)
    from style_studio.studio import DEFAULT_TEMPLATE

    model = args.model or studio.captions.default_captioner()
    job = studio.captions.auto(style.id, model, image_ids=args.images,
                               overwrite=args.overwrite,
                               replace_approved=args.replace_approved,
                               detailed=args.detailed, template=args.template or DEFAULT_TEMPLATE)
    done = follow(studio, job, args, f"Captioning with {model}")
    return Result({"job": done.id, "model": model, "result": done.result or {},
                   "message": done.message},
                  [f"Captioned the images of '{style.name}' with {model}, as drafts"
                   + (f" ({done.message})." if done.message not in ("", "Finished") else "."),
                   "Read them with 'style-studio caption list', then approve."])


def set_caption(studio: Studio, args: argparse.Namespace) -> Result:
    studio.images.get(args.image)  # a clear NotFound for a wrong id
    caption = studio.captions.set(args.image, args.text, approved=args.approve)
    return Result({"image": args.image, "text": caption.text, "status": caption.status},
                  [f"Caption of {args.image} ({caption.status}): {caption.text}"])


def approve_captions(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import InvalidInput, NotFound

    style = find_style(studio, args.style)
    rows = {r.image_id: r for r in studio.captions.rows(style.id)}
    wanted = args.images or list(rows)
    unknown = [i for i in wanted if i not in rows]
    if unknown:
        raise NotFound(f"Image {unknown[0]} is not in '{style.name}'.")
    empty = [rows[i].filename for i in wanted if not rows[i].text.strip()]
    if args.images and empty:
        raise InvalidInput(f"{empty[0]} has no caption yet: write one with 'style-studio "
                           "caption set' or 'caption auto' first.")
    approved = [i for i in wanted if rows[i].text.strip() and rows[i].status != "approved"]
    with studio.store.batch():  # one write for the lot
        for image_id in approved:
            studio.captions.approve(image_id)
    lines = [f"Approved {len(approved)} caption(s) of '{style.name}'."]
    if empty:
        lines.append(f"{len(empty)} image(s) have no caption yet and stay unapproved.")
    return Result({"approved": approved, "without_caption": empty}, lines)


def export_sidecars(studio: Studio, args: argparse.Namespace) -> Result:
    style = find_style(studio, args.style)
    report = studio.captions.sidecars.export(style.id, args.dest.expanduser(),
                                             approved_only=args.approved_only,
                                             include_images=args.with_images)
    return Result({"path": str(report.path), "captions": report.captions,
                   "images": report.images}, [f"{report.message} ({report.path})"])


def import_sidecars(studio: Studio, args: argparse.Namespace) -> Result:
    from style_studio.studio import InvalidInput

    style = find_style(studio, args.style)
    missing = [p for p in args.paths if not p.exists()]
    if missing:
        raise InvalidInput(f"There is no file {missing[0]}.")
    report = studio.captions.sidecars.import_files(style.id, list(args.paths),
                                                   replace_approved=args.replace_approved)
    return Result({"imported": report.imported, "unchanged": report.unchanged,
                   "skipped": [list(s) for s in report.skipped]},
                  [report.message, *(f"  {name}: {why}" for name, why in report.skipped)])
