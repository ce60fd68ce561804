"""Command line: `bootsrv serve --config FILE`, `bootsrv check-config FILE`.

Exit codes: 0 ok, 1 failure, 2 usage. Mistakes print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bootsrv import __version__
from bootsrv.app import StartupError, serve
from bootsrv import disktool
from bootsrv.config import ConfigError, load_config, parse_size
from bootsrv.disktool import DiskToolError
from target.stores.vhd.format import DEFAULT_BLOCK_SIZE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bootsrv", description="Boot-and-backup appliance: iSCSI target, "
                                     "network boot and snapshots in one program.")
    parser.add_argument("--version", action="version", version=f"bootsrv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser("serve", help="run the appliance in the foreground (logs to stderr)")
    run.add_argument("--config", "-c", required=True, metavar="FILE", help="TOML configuration file")
    check = commands.add_parser("check-config", help="validate a configuration file without serving")
    check.add_argument("file", metavar="FILE")
    disk = commands.add_parser("disk", help="create, inspect, convert, grow and check virtual disks")
    actions = disk.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new VHD: dynamic, fixed, or differencing (--parent)")
    create.add_argument("path")
    create.add_argument("--size", help='virtual size, e.g. "20GiB"')
    create.add_argument("--type", choices=("dynamic", "fixed"), default="dynamic")
    create.add_argument("--block-size", default="2M", help="dynamic disks: block size (power of two)")
    create.add_argument("--parent", help="make a differencing disk over this VHD (size from the parent)")
    info = actions.add_parser("info", help="type, size, allocation, UUID, geometry, parent chain")
    info.add_argument("path")
    info.add_argument("--json", action="store_true")
    convert = actions.add_parser("convert", help="raw <-> VHD, or flatten a VHD chain")
    convert.add_argument("src")
    convert.add_argument("dst")
    convert.add_argument("--type", choices=("dynamic", "fixed"))
    extend = actions.add_parser("extend", help="grow a disk (offline)")
    extend.add_argument("path")
    extend.add_argument("--size", required=True)
    check_disk = actions.add_parser("check", help="checksums, BAT bounds and overlaps, parent linkage")
    check_disk.add_argument("path")
    return parser


def _size(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    size = parse_size(text)
    if size is None or size % 512:
        raise DiskToolError(f"{what}: expected a size in bytes, a multiple of 512, like 20GiB; got {text!r}")
    return size


def _disk(args: argparse.Namespace) -> int:
    if args.action == "create":
        block = _size(args.block_size, "--block-size") or DEFAULT_BLOCK_SIZE
        print(disktool.create(args.path, _size(args.size, "--size"), args.type, block, args.parent))
    elif args.action == "info":
        disktool.print_info(disktool.info(args.path), args.json)
    elif args.action == "convert":
        print(disktool.convert(args.src, args.dst, args.type))
    elif args.action == "extend":
        print(disktool.grow(args.path, _size(args.size, "--size") or 0))
    else:
        ok, lines = disktool.check(args.path)
        print("\n".join(f"{args.path}: {line}" for line in lines))
        return 0 if ok else 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "disk":
            return _disk(args)
        if args.command == "check-config":
            config = load_config(args.file)
            print(f"{args.file}: ok ({len(config.disks)} disks, {len(config.targets)} targets, "
                  f"{len(config.clients)} clients, DHCP {config.dhcp.mode})")
            return 0
        config = load_config(args.config)
        logging.basicConfig(level=config.server.log_level.upper(), stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        asyncio.run(serve(config))
        return 0
    except (ConfigError, StartupError, DiskToolError) as exc:
        print(f"bootsrv: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"bootsrv: {exc.filename}: no such file", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
