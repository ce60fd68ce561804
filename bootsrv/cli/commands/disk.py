"""`bootsrv disk ...`: create, inspect, convert, grow and check virtual disk files here,
and add, remove and list the [[disk]]s a server serves."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bootsrv import disktool
from bootsrv.admin import call
from bootsrv.cli.common import actions, config_option, edit, long_work, print_rows, size_arg
from bootsrv.config import ConfigError, load_config
from target.stores.vhd.format import DEFAULT_BLOCK_SIZE


def register(commands: Any) -> None:
    disk = actions(commands, "disk", "create, inspect, convert, grow and check virtual disks")
    create = disk.add_parser("create", help="a new VHD: dynamic, fixed, or differencing (--parent)")
    create.add_argument("path")
    create.add_argument("--size", help='virtual size, e.g. "20GiB"')
    create.add_argument("--type", choices=("dynamic", "fixed"), default="dynamic")
    create.add_argument("--block-size", default="2M", help="dynamic disks: block size (power of two)")
    create.add_argument("--parent", help="make a differencing disk over this VHD (size from the parent)")
    create.set_defaults(run=_create)
    info = disk.add_parser("info", help="type, size, allocation, UUID, geometry, parent chain")
    info.add_argument("path")
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=_info)
    convert = disk.add_parser("convert", help="raw <-> VHD, or flatten a VHD chain")
    convert.add_argument("src")
    convert.add_argument("dst")
    convert.add_argument("--type", choices=("dynamic", "fixed"))
    convert.add_argument("--json", action="store_true", help="progress and the outcome as JSON lines")
    config_option(convert)
    convert.set_defaults(run=_convert)
    extend = disk.add_parser("extend", help="grow a disk (online, if the server of --config serves it)")
    extend.add_argument("path")
    extend.add_argument("--size", required=True)
    config_option(extend)
    extend.set_defaults(run=_extend)
    check = disk.add_parser("check", help="checksums, BAT bounds and overlaps, parent linkage")
    check.add_argument("path")
    check.set_defaults(run=_check)
    add = disk.add_parser("add", help="serve a disk file: add a [[disk]] to the configuration")
    add.add_argument("name")
    add.add_argument("path")
    add.add_argument("--size", help="create the file at start if it is missing (raw or .vhd)")
    add.add_argument("--readonly", action="store_true")
    add.set_defaults(run=_add)
    remove = disk.add_parser("remove", help="stop serving a disk (its file stays)")
    remove.add_argument("name")
    remove.set_defaults(run=lambda args: edit(args, "disk.remove", {"name": args.name}))
    listing = disk.add_parser("list", help="the configured disks")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    for sub in (add, remove, listing):
        config_option(sub)


def _create(args: argparse.Namespace) -> int:
    block = size_arg(args.block_size, "--block-size") or DEFAULT_BLOCK_SIZE
    print(disktool.create(args.path, size_arg(args.size, "--size"), args.type, block, args.parent))
    return 0


def _info(args: argparse.Namespace) -> int:
    disktool.print_info(disktool.info(args.path), args.json)
    return 0


def _convert(args: argparse.Namespace) -> int:
    """In the server of --config when one runs (a task, on its dashboard too), else here."""
    src, dst = _where(args.src), _where(args.dst)
    result = long_work(args, "disk.convert", {"src": src, "dst": dst, "type": args.type},
                       f"convert {src} -> {dst}", lambda progress: disktool.convert(src, dst, args.type, progress))
    if not args.json:
        print(result)
    return 0


def _where(path: str) -> str:
    """A file as the server finds it (it runs elsewhere); rbd:POOL/IMAGE as it is."""
    return path if path.startswith("rbd:") else str(Path(path).absolute())


def _extend(args: argparse.Namespace) -> int:
    """The server that serves the disk grows it under its sessions; with none running, the
    file is grown here (a server serving it without being asked holds a lock that refuses)."""
    size = size_arg(args.size, "--size") or 0
    try:
        print(call(load_config(args.config).server.state_dir, "disk.extend",
                   {"path": str(Path(args.path).resolve()), "size": size}))
    except (ConfigError, ConnectionError):
        print(disktool.grow(args.path, size))
    return 0


def _check(args: argparse.Namespace) -> int:
    ok, lines = disktool.check(args.path)
    print("\n".join(f"{args.path}: {line}" for line in lines))
    return 0 if ok else 1


def _add(args: argparse.Namespace) -> int:
    if args.size:
        size_arg(args.size, "--size")
    return edit(args, "disk.add", {"name": args.name, "path": args.path, "size": args.size or "",
                                   "readonly": args.readonly})


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rows = [{"name": d.name, "path": str(d.path), "readonly": d.readonly,
             "targets": ",".join(t.iqn for t in config.targets if d.name in t.luns) or "-"} for d in config.disks]
    print_rows(rows, args.json, ["name", "path", "readonly", "targets"])
    return 0
