"""`bootsrv image ...`: an image's versions, the maintenance edit, commit, revert, prune
(asked of the running server: it knows which client boots what)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from bootsrv.cli.common import actions, ask, config_option, edit as edit_config, long_work, size_arg, size_text, when
from bootsrv.config import load_config
from bootsrv.disktool import DiskToolError, convert, is_vhd
from bootsrv.progress import renderer, run_shown
from bootsrv.runtime.disks import configure_ceph
from target.stores.errors import StoreError
from target.stores.rbd import images as rbd_images
from target.stores.registry import create_store, remove_store
from target.stores.vhd import read_footer
from target.stores.vhd.check import check_vhd
from target.stores.vhd.create import create_dynamic
from target.stores.vhd.format import DIFFERENCING


def register(commands: Any) -> None:
    image = actions(commands, "image", "golden images: versions, edit with a maintenance client, commit, "
                    "revert, prune")
    create = image.add_parser("create", help="a new, empty image (a dynamic VHD): install onto it, or import one")
    create.add_argument("image")
    create.add_argument("--size", required=True, help="its virtual size, like 40GiB")
    create.add_argument("--path", help="its file (default: images/IMAGE.vhd beside the configuration), "
                                       "or rbd:POOL/IMAGE in the [ceph] cluster")
    create.set_defaults(run=_create)
    take = image.add_parser("import", help="a new image from an existing raw or VHD file (checked, then copied "
                            "as a dynamic VHD; --in-place uses the VHD where it is, --move takes it over)")
    take.add_argument("image")
    take.add_argument("file")
    how = take.add_mutually_exclusive_group()
    how.add_argument("--move", action="store_true", help="the file becomes the image's (it is moved, or "
                     "converted and then removed)")
    how.add_argument("--in-place", action="store_true", help="serve the VHD where it is (it must not change)")
    take.add_argument("--path", help="where the copy goes (default: images/IMAGE.vhd beside the configuration), "
                                     "or rbd:POOL/IMAGE in the [ceph] cluster")
    take.set_defaults(run=_import)
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
    install = image.add_parser("install", help="CLIENT's next boot starts the installer on ISO with the image's "
                               "edit layer as its hard disk; commit then makes the installed system a version")
    install.add_argument("image")
    install.add_argument("--iso", required=True, help="the installer (served read-only over bootsrv's HTTP)")
    install.add_argument("--client", required=True)
    install.set_defaults(run=lambda args: _show(args, "image.install", {
        "image": args.image, "client": args.client, "iso": str(Path(args.iso).resolve())},
        f"{args.client} starts the installer {args.iso} at its next power-on"))
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
    grow = image.add_parser("extend", help="a larger image: a new version of SIZE over the current one "
                            "(clients follow as they follow any new version)")
    grow.add_argument("image")
    grow.add_argument("--size", required=True, help="the new virtual size, like 60GiB")
    grow.set_defaults(run=lambda args: _show(args, "image.extend", {"image": args.image,
                                                                     "size": size_arg(args.size, "--size")},
                                             f"extended to {args.size}"))
    flat = image.add_parser("flatten", help="the current version as a new version with no parent (one full "
                            "copy): chains start short again, and prune can then delete the old ones")
    flat.add_argument("image")
    flat.add_argument("--label", default="")
    flat.set_defaults(run=_flatten)
    prune = image.add_parser("prune", help="delete versions that no client, snapshot or edit is built on")
    prune.add_argument("image")
    prune.set_defaults(run=_prune)
    for sub in (create, take, listing, edit, install, commit, discard, revert, grow, flat, prune):
        config_option(sub)


def _new_path(args: argparse.Namespace) -> Path:
    if args.path and args.path.startswith("rbd:"):  # an image in the Ceph cluster of [ceph]
        configure_ceph(load_config(args.config))
        if rbd_images.exists(args.path.removeprefix("rbd:")):
            raise DiskToolError(f"{args.path} already exists (choose another --path)")
        return Path(args.path)
    path = Path(args.path) if args.path else Path(args.config).resolve().parent / "images" / f"{args.image}.vhd"
    if path.exists():
        raise DiskToolError(f"{path} already exists (choose another --path)")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def _add_image(args: argparse.Namespace, path: Path, made: bool) -> int:
    """Name the file in the configuration; a refused edit leaves no file made for it."""
    try:
        return edit_config(args, "image.add", {"name": args.image, "path": str(path)})
    except BaseException:
        if made:
            remove_store(path)
        raise


def _create(args: argparse.Namespace) -> int:
    size = size_arg(args.size, "--size")
    path = _new_path(args)
    try:
        create_store(path, size) if str(path).startswith("rbd:") else create_dynamic(path, size)
    except StoreError as exc:
        raise DiskToolError(f"{path}: {exc}") from None
    print(f"created {path} ({size_text(size)}, empty)")
    return _add_image(args, path, made=True)


def _import(args: argparse.Namespace) -> int:
    source = Path(args.file).resolve()
    if not source.is_file():
        raise DiskToolError(f"{source}: no such file")
    vhd = is_vhd(source)
    if vhd:
        report = check_vhd(source)
        if not report.ok:
            raise DiskToolError(f"{source} does not check clean: {'; '.join(report.findings)}")
        if read_footer(source).disk_type == DIFFERENCING:
            if args.in_place or args.move:
                raise DiskToolError(f"{source} is a differencing VHD: import a flattened copy (no --in-place/--move)")
    if args.in_place:
        if not vhd:
            raise DiskToolError(f"{source} is a raw image: it is converted to a VHD copy (leave out --in-place)")
        return _add_image(args, source, made=False)
    path = _new_path(args)
    if args.move and vhd and not str(path).startswith("rbd:"):
        shutil.move(source, path)
        print(f"moved {source} -> {path}")
        return _add_image(args, path, made=False)
    shown = renderer("image.import", f"import {source} -> {path}", "bytes", as_json=False)
    # raw, or a chain flattened: a standalone dynamic VHD
    print(run_shown(lambda progress: convert(str(source), str(path), "dynamic", progress), shown))
    status = _add_image(args, path, made=True)
    if args.move:
        source.unlink()
        print(f"removed {source} (taken over)")
    return status


def _flatten(args: argparse.Namespace) -> int:
    """A full copy of the current version: a task in the server, its progress drawn here."""
    record = long_work(args, "image.flatten", {"image": args.image, "label": args.label},
                       f"flatten image {args.image}", None)
    return _said(record, "flattened")


def _show(args: argparse.Namespace, op: str, op_args: dict[str, Any], done: str) -> int:
    return _said(ask(args, op, op_args), done)


def _said(record: dict[str, Any], done: str) -> int:
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
