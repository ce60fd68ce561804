"""`bootsrv image ...`: an image's versions, the maintenance edit, commit, revert, prune
(asked of the running server: it knows which client boots what)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bootsrv.cli.common import actions, ask, config_option, size_text, when


def register(commands: Any) -> None:
    image = actions(commands, "image", "golden images: versions, edit with a maintenance client, commit, "
                    "revert, prune")
    listing = image.add_parser("versions", help="an image's versions, which is current, who boots each")
    listing.add_argument("image", nargs="?")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_versions)
    edit = image.add_parser("edit", help="from CLIENT's next power-on, it boots a writable layer over the "
                            "current version (its own disk is left as it is)")
    edit.add_argument("image")
    edit.add_argument("--client", required=True)
    edit.set_defaults(run=lambda args: _show(args, "image.edit", {"image": args.image, "client": args.client},
                                             f"{args.client} edits image {args.image} from its next power-on"))
    commit = image.add_parser("commit", help="the edit becomes the next version, the current one")
    commit.add_argument("image")
    commit.add_argument("--label", default="")
    commit.add_argument("--force", action="store_true", help="flush, then drop the maintenance client's sessions")
    commit.set_defaults(run=lambda args: _show(args, "image.commit", {"image": args.image, "label": args.label,
                                                                       "force": args.force}, "committed"))
    discard = image.add_parser("discard", help="throw the edit away")
    discard.add_argument("image")
    discard.add_argument("--force", action="store_true", help="drop the maintenance client's sessions")
    discard.set_defaults(run=lambda args: _show(args, "image.discard", {"image": args.image, "force": args.force},
                                                "edit discarded"))
    revert = image.add_parser("revert", help="make version N current again (newer versions are kept)")
    revert.add_argument("image")
    revert.add_argument("--to", type=int, required=True, metavar="N")
    revert.set_defaults(run=lambda args: _show(args, "image.revert", {"image": args.image, "to": args.to},
                                               f"version {args.to} is current"))
    prune = image.add_parser("prune", help="delete versions that no client, snapshot or edit is built on")
    prune.add_argument("image")
    prune.set_defaults(run=_prune)
    for sub in (listing, edit, commit, discard, revert, prune):
        config_option(sub)


def _show(args: argparse.Namespace, op: str, op_args: dict[str, Any], done: str) -> int:
    record = ask(args, op, op_args)
    current = next(v for v in record["versions"] if v["number"] == record["current"])
    print(f"image {record['name']}: {done}; current version {record['current']}"
          f"{' (' + current['label'] + ')' if current['label'] else ''}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    record = ask(args, "image.prune", {"image": args.image})
    pruned = ", ".join(map(str, record["pruned"])) or "none (every version is in use)"
    print(f"image {record['name']}: deleted version(s) {pruned}")
    return 0


def _versions(args: argparse.Namespace) -> int:
    images = ask(args, "image.versions", {"image": args.image} if args.image else {})
    if args.json:
        print(json.dumps(images, indent=2))
        return 0
    for number, image in enumerate(images):
        if number:
            print()
        edit = image["edit"]
        print(f"image {image['name']}: current version {image['current']}"
              + (f"; {edit['client']} is editing over version {edit['base']}"
                 f"{' (booted into it)' if edit['booted'] else ' (from its next power-on)'}" if edit else ""))
        print(f"  {'VERSION':<8} {'PARENT':<7} {'CREATED':<20} {'BYTES':>10}  {'LABEL':<16} CLIENTS")
        for v in image["versions"]:
            mark = "*" if v["current"] else " "
            print(f"{mark} {v['number']:<8} {v['parent'] or '-'!s:<7} {when(v['created']):<20} "
                  f"{size_text(v['bytes']):>10}  {v['label'] or '-':<16} {', '.join(v['clients']) or '-'}")
        if image["clients_elsewhere"]:
            print(f"  not on any version: {', '.join(image['clients_elsewhere'])}")
    return 0
