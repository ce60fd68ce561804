"""Command line: `bootsrv serve --config FILE`, `bootsrv check-config FILE`.

Exit codes: 0 ok, 1 failure, 2 usage. Mistakes print one line, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from bootsrv import __version__
from bootsrv.app import StartupError, serve
from bootsrv import adopted, disktool
from bootsrv.admin import call
from bootsrv.confedit import edit_config
from bootsrv.config import ConfigError, exposed_secrets, load_config, parse_size
from bootsrv.disktool import DiskToolError
from snapshots.export import verify
from target.stores.vhd.format import DEFAULT_BLOCK_SIZE

DEFAULT_CONFIG = "/etc/bootsrv/bootsrv.toml"


class _Parser(argparse.ArgumentParser):
    """Usage mistakes: one line naming what is wrong (and where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bootsrv", description="Boot-and-backup appliance: iSCSI target, "
                     "network boot and snapshots in one program.")
    parser.add_argument("--version", action="version", version=f"bootsrv {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
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
    add_disk = actions.add_parser("add", help="serve a disk file: add a [[disk]] to the configuration")
    add_disk.add_argument("name")
    add_disk.add_argument("path")
    add_disk.add_argument("--size", help="create the file at start if it is missing (raw or .vhd)")
    add_disk.add_argument("--readonly", action="store_true")
    remove_disk = actions.add_parser("remove", help="stop serving a disk (its file stays)")
    remove_disk.add_argument("name")
    list_disks = actions.add_parser("list", help="the configured disks")
    list_disks.add_argument("--json", action="store_true")
    for sub in (add_disk, remove_disk, list_disks):
        _config_option(sub)
    _target_parser(commands)
    _client_parser(commands)
    status = commands.add_parser("status", help="what the running server serves: disks, sessions, schedules")
    _config_option(status)
    status.add_argument("--json", action="store_true")
    _snapshot_parser(commands)
    schedule = commands.add_parser("schedule", help="snapshot schedules: add, list, remove, run one now")
    schedule_actions = schedule.add_subparsers(dest="action", required=True, metavar="ACTION")
    run_now = schedule_actions.add_parser("run", help="take, export and prune as the schedule would, now")
    run_now.add_argument("name")
    add_schedule = schedule_actions.add_parser("add", help="snapshot disks on a cron schedule")
    add_schedule.add_argument("name")
    add_schedule.add_argument("--cron", required=True, help='five fields, e.g. "0 2 * * *" (02:00 daily)')
    add_schedule.add_argument("--disk", action="append", metavar="NAME", help="disk/client name or pattern "
                              "(repeat; default: all)")
    add_schedule.add_argument("--export", choices=("none", "full", "incremental"), default="none")
    for kind in ("last", "daily", "weekly", "monthly"):
        add_schedule.add_argument(f"--keep-{kind}", type=int, default=0, metavar="N")
    list_schedules = schedule_actions.add_parser("list", help="schedules with their last and next run")
    list_schedules.add_argument("--json", action="store_true")
    remove_schedule = schedule_actions.add_parser("remove", help="stop a schedule (its snapshots stay)")
    remove_schedule.add_argument("name")
    for sub in (run_now, add_schedule, list_schedules, remove_schedule):
        _config_option(sub)
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", metavar="FILE", default=os.environ.get("BOOTSRV_CONFIG", DEFAULT_CONFIG),
                        help=f"the running server's configuration (default $BOOTSRV_CONFIG or {DEFAULT_CONFIG})")


def _target_parser(commands: Any) -> None:
    target = commands.add_parser("target", help="iSCSI targets: create, list, remove, assign disks, allow initiators")
    actions = target.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a new target (its disks become LUN 0, 1, ...)")
    create.add_argument("iqn")
    create.add_argument("--disk", action="append", default=[], metavar="NAME", help="a [[disk]] to serve (repeat)")
    create.add_argument("--initiator", action="append", default=[], metavar="IQN",
                        help="an initiator allowed to log in (repeat; none = any)")
    create.add_argument("--alias", default="")
    listing = actions.add_parser("list", help="targets with their LUNs and allowed initiators")
    listing.add_argument("--json", action="store_true")
    remove = actions.add_parser("remove", help="delete a target (its disks stay)")
    remove.add_argument("iqn")
    assign = actions.add_parser("assign", help="serve one more disk on a target (next LUN)")
    assign.add_argument("iqn")
    assign.add_argument("disk")
    allow = actions.add_parser("allow", help="let one more initiator log in to a target")
    allow.add_argument("iqn")
    allow.add_argument("initiator")
    for sub in (create, listing, remove, assign, allow):
        _config_option(sub)


def _client_parser(commands: Any) -> None:
    client = commands.add_parser("client", help="diskless clients: add, list, remove")
    actions = client.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="a new client: its own disk over an image, booted by MAC")
    add.add_argument("name")
    add.add_argument("--mac", required=True)
    add.add_argument("--image", required=True, help="an [[image]] name")
    add.add_argument("--ip", default="", help="a fixed address (DHCP full mode)")
    add.add_argument("--reset-on-boot", action="store_true", help="start from the image at every boot")
    listing = actions.add_parser("list", help="clients, and whether each is online (when the server runs)")
    listing.add_argument("--json", action="store_true")
    remove = actions.add_parser("remove", help="forget a client (its disk file and snapshots stay)")
    remove.add_argument("name")
    remove.add_argument("--delete-disk", action="store_true", help="delete its disk file too")
    keep = actions.add_parser("keep", help="turn an adopted client (pc-...) into a [[client]], disk and all")
    keep.add_argument("name", help="the adopted client's name (pc-<mac>)")
    keep.add_argument("--name", dest="new_name", required=True, help="its name as a [[client]]")
    for sub in (add, listing, remove, keep):
        _config_option(sub)


def _snapshot_parser(commands: Any) -> None:
    snap = commands.add_parser("snapshot", help="point-in-time copies of live disks: take, list, mount, export, "
                               "roll back, delete")
    actions = snap.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="freeze a disk's current content (clients keep running)")
    create.add_argument("disk")
    create.add_argument("--label", default="")
    listing = actions.add_parser("list", help="snapshots with their time, size, mounts and exports")
    listing.add_argument("disk", nargs="?")
    listing.add_argument("--json", action="store_true")
    delete = actions.add_parser("delete", help="remove a snapshot (its data merges into its neighbour)")
    delete.add_argument("id", type=int)
    mount = actions.add_parser("mount", help="read-only: as its own iSCSI target, or as DIR/disk.img here")
    mount.add_argument("id", type=int)
    how = mount.add_mutually_exclusive_group(required=True)
    how.add_argument("--iscsi", action="store_true")
    how.add_argument("--local", metavar="DIR")
    unmount = actions.add_parser("unmount", help="undo snapshot mount")
    unmount.add_argument("id", type=int)
    export = actions.add_parser("export", help="write the snapshot as a file for backup, with a sha256 manifest")
    export.add_argument("id", type=int)
    export.add_argument("dest_dir")
    export.add_argument("--format", choices=("vhd", "raw"), default="vhd")
    export.add_argument("--incremental-from", type=int, metavar="ID",
                        help="only what changed since snapshot ID (a differencing VHD over ID's export)")
    verify = actions.add_parser("verify", help="re-read an export and the exports it builds on")
    verify.add_argument("path")
    rollback = actions.add_parser("rollback", help="return the disk to this snapshot's content")
    rollback.add_argument("id", type=int)
    rollback.add_argument("--force", action="store_true", help="drop the client's sessions first")
    for sub in (create, listing, delete, mount, unmount, export, verify, rollback):  # verify needs none; accepted alike
        _config_option(sub)


def _size(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    size = parse_size(text)
    if size is None or size % 512:
        raise DiskToolError(f"{what}: expected a size in bytes, a multiple of 512, like 20GiB; got {text!r}")
    return size


def _disk(args: argparse.Namespace) -> int:
    if args.action in ("add", "remove", "list"):
        return _disk_config(args)
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


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _size_text(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


def _snapshot(args: argparse.Namespace) -> int:
    if args.action == "verify":
        findings = verify(args.path)
        print("\n".join(findings) if findings else f"{args.path}: ok (files, checksums and chain verified)")
        return 1 if findings else 0
    state_dir = load_config(args.config).server.state_dir
    if args.action == "create":
        snap = call(state_dir, "snapshot.create", {"disk": args.disk, "label": args.label})
        print(f"snapshot {snap['id']} of {snap['disk']} taken at {_when(snap['created'])} "
              f"(writes held {snap['pause_ms']:.1f} ms)")
    elif args.action == "list":
        rows = call(state_dir, "snapshot.list", {"disk": args.disk})
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print(f"{'ID':>5}  {'DISK':<16} {'TAKEN':<19}  {'DATA':>10}  {'ORIGIN':<18} {'MOUNTED':<8} LABEL")
        for row in rows:
            mounted = ",".join(m for m, on in (("iscsi", row["mount_iscsi"]), ("local", row["mount_local"])) if on)
            state = "" if row["state"] == "ready" else f" [{row['state']}]"
            print(f"{row['id']:>5}  {row['disk']:<16} {_when(row['created']):<19}  "
                  f"{_size_text(row['unique_bytes']):>10}  {row['origin']:<18} {mounted or '-':<8} {row['label']}{state}")
    elif args.action == "delete":
        call(state_dir, "snapshot.delete", {"id": args.id})
        print(f"snapshot {args.id} deleted")
    elif args.action == "mount":
        result = call(state_dir, "snapshot.mount", {"id": args.id, "local": args.local})
        print(result.get("target") or result.get("file"))
    elif args.action == "unmount":
        print("unmounted: " + ", ".join(call(state_dir, "snapshot.unmount", {"id": args.id})))
    elif args.action == "export":
        result = call(state_dir, "snapshot.export", {"id": args.id, "dest": str(Path(args.dest_dir).resolve()),
                                                     "format": args.format,
                                                     "incremental_from": args.incremental_from})
        print(f"{result['path']}  sha256 {result['sha256']}" + (f"  (over {result['base']})" if result["base"] else ""))
    else:
        call(state_dir, "snapshot.rollback", {"id": args.id, "force": args.force})
        print(f"rolled back to snapshot {args.id}")
    return 0


def _edit(args: argparse.Namespace, op: str, edit_args: dict[str, Any]) -> int:
    """A running server makes the change itself (and applies it); else the file is edited here."""
    config = load_config(args.config)
    try:
        result = call(config.server.state_dir, "config.edit", {"op": op, "args": edit_args})
    except ConnectionError:
        print(f"{args.config}: {edit_config(args.config, op, edit_args)}")
        print("bootsrv is not running: the change takes effect when it starts")
        return 0
    print(f"{config.path}: {result['message']}")
    for line in result["applied"]:
        print(f"applied: {line}")
    if result["restart_needed"]:
        print(f"restart bootsrv for: {', '.join(result['restart_needed'])}")
    return 0


def _print_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    widths = [max([len(column)] + [len(str(row[column])) for row in rows]) for column in columns]
    print("  ".join(column.upper().ljust(width) for column, width in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row[column]).ljust(width) for column, width in zip(columns, widths)))


def _target(args: argparse.Namespace) -> int:
    if args.action == "list":
        config = load_config(args.config)
        rows = [{"iqn": t.iqn, "luns": ",".join(t.luns) or "-", "initiators": ",".join(t.initiators) or "any",
                 "chap": "yes" if t.chap else "no", "alias": t.alias} for t in config.targets]
        _print_rows(rows, args.json, ["iqn", "luns", "initiators", "chap", "alias"])
        return 0
    if args.action == "create":
        return _edit(args, "target.create", {"iqn": args.iqn, "disks": args.disk, "initiators": args.initiator,
                                             "alias": args.alias})
    if args.action == "remove":
        return _edit(args, "target.remove", {"iqn": args.iqn})
    if args.action == "assign":
        return _edit(args, "target.assign", {"iqn": args.iqn, "disk": args.disk})
    return _edit(args, "target.allow", {"iqn": args.iqn, "initiator": args.initiator})


def _client(args: argparse.Namespace) -> int:
    if args.action == "list":
        config = load_config(args.config)
        try:
            live = {row["name"]: row for row in call(config.server.state_dir, "clients")}
        except ConnectionError:
            live = {}
        rows = [{"name": c.name, "mac": c.mac, "image": c.image, "ip": c.ip or live.get(c.name, {}).get("ip") or "-",
                 "reset_on_boot": c.reset_on_boot,
                 "state": ("online" if live[c.name]["online"] else "offline") if c.name in live else "-"}
                for c in config.clients]
        for row in rows:
            row["origin"] = "config"
        for record in adopted.load(config.server.state_dir):
            row = live.get(record.name, {})
            rows.append({"name": record.name, "mac": record.mac, "image": record.image, "ip": row.get("ip") or "-",
                         "reset_on_boot": False, "origin": "adopted",
                         "state": ("online" if row["online"] else "offline") if row else "-"})
        _print_rows(rows, args.json, ["name", "mac", "ip", "image", "state", "reset_on_boot", "origin"])
        return 0
    if args.action == "add":
        return _edit(args, "client.add", {"name": args.name, "mac": args.mac, "image": args.image, "ip": args.ip,
                                          "reset_on_boot": args.reset_on_boot})
    config = load_config(args.config)
    record = next((r for r in adopted.load(config.server.state_dir) if r.name == args.name), None)
    if args.action == "keep":
        if record is None:
            raise SystemExit(f"bootsrv: no adopted client {args.name!r} (client list shows them)")
        _forget_adopted(config.server.state_dir, args.name, delete_disk=False)
        clients = config.server.state_dir / "clients"
        if (clients / f"{args.name}.vhd").exists():  # the [[client]] boots the same disk, changes and all
            os.replace(clients / f"{args.name}.vhd", clients / f"{args.new_name}.vhd")
        return _edit(args, "client.add", {"name": args.new_name, "mac": record.mac, "image": record.image})
    if record is not None and not any(c.name == args.name for c in config.clients):
        print(_forget_adopted(config.server.state_dir, args.name, args.delete_disk))
        return 0
    status = _edit(args, "client.remove", {"name": args.name})
    if args.delete_disk:
        disk = config.server.state_dir / "clients" / f"{args.name}.vhd"
        disk.unlink(missing_ok=True)
        print(f"deleted {disk}")
    return status


def _forget_adopted(state_dir: Path, name: str, delete_disk: bool) -> str:
    """A running server drops the client's sessions and target; else only the record and file go."""
    try:
        return str(call(state_dir, "client.forget", {"name": name, "delete_disk": delete_disk}))
    except ConnectionError:
        adopted.remove(state_dir, name)
        return adopted.dispose_disk(state_dir, name, delete_disk)


def _disk_config(args: argparse.Namespace) -> int:
    if args.action == "list":
        config = load_config(args.config)
        rows = [{"name": d.name, "path": str(d.path), "readonly": d.readonly,
                 "targets": ",".join(t.iqn for t in config.targets if d.name in t.luns) or "-"} for d in config.disks]
        _print_rows(rows, args.json, ["name", "path", "readonly", "targets"])
        return 0
    if args.action == "add":
        if args.size:
            _size(args.size, "--size")
        return _edit(args, "disk.add", {"name": args.name, "path": args.path, "size": args.size or "",
                                        "readonly": args.readonly})
    return _edit(args, "disk.remove", {"name": args.name})


def _schedule(args: argparse.Namespace) -> int:
    if args.action == "run":
        result = call(load_config(args.config).server.state_dir, "schedule.run", {"name": args.name})
        print(f"schedule {args.name}: {result}")
        return 0 if result == "ok" else 1
    if args.action == "list":
        config = load_config(args.config)
        try:
            live = {row["name"]: row for row in call(config.server.state_dir, "status")["schedules"]}
        except ConnectionError:
            live = {}
        rows = [{"name": s.name, "cron": s.cron, "disks": " ".join(s.disks), "export": s.export,
                 "keep": " ".join(f"{k}={v}" for k, v in (("last", s.keep.last), ("daily", s.keep.daily),
                                                            ("weekly", s.keep.weekly), ("monthly", s.keep.monthly))
                                  if v) or "all",
                 "last_run": _when(live.get(s.name, {}).get("last_run")),
                 "result": live.get(s.name, {}).get("last_result") or "-",
                 "next_run": _when(live.get(s.name, {}).get("next_run"))} for s in config.snapshots.schedules]
        _print_rows(rows, args.json, ["name", "cron", "disks", "export", "keep", "last_run", "result", "next_run"])
        return 0
    if args.action == "add":
        keep = {kind: getattr(args, f"keep_{kind}") for kind in ("last", "daily", "weekly", "monthly")}
        return _edit(args, "schedule.add", {"name": args.name, "cron": args.cron, "disks": args.disk or ["*"],
                                            "export": args.export, "keep": keep})
    return _edit(args, "schedule.remove", {"name": args.name})


def _status(args: argparse.Namespace) -> int:
    status = call(load_config(args.config).server.state_dir, "status")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"bootsrv pid {status['pid']}, up {status['uptime'] / 3600:.1f} h, portals {', '.join(status['portals'])}, "
          f"{status['sessions']} session(s)")
    print("  services: " + ", ".join(f"{name} {state}" for name, state in status["services"].items())
          + f"; clients {status['clients']['total']} ({status['clients']['adopted']} adopted, "
            f"{status['clients']['disks_open']} disks open)")
    for disk in status["disks"]:
        print(f"  disk {disk['name']:<16} {_size_text(disk['size']):>10}  {disk['sessions']} session(s)  "
              f"{disk['snapshots']} snapshot(s), {_size_text(disk['snapshot_bytes'])}")
    for row in status["schedules"]:
        print(f"  schedule {row['name']} ({row['cron']}, disks {' '.join(row['disks'])}, export {row['export']}): "
              f"last run {_when(row['last_run'])} {row['last_result']}; next run {_when(row['next_run'])}")
    for mount in status["mounts"]:
        print(f"  snapshot {mount['id']} of {mount['disk']} mounted" + (" as iSCSI" if mount["iscsi"] else "")
              + (f" at {mount['local']}" if mount["local"] else ""))
    return 0


def _check_config(args: argparse.Namespace) -> int:
    config = load_config(args.file)
    print(f"{args.file}: ok ({len(config.disks)} disks, {len(config.targets)} targets, "
          f"{len(config.clients)} clients, DHCP {config.dhcp.mode})")
    warning = exposed_secrets(config)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _serve(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    logging.basicConfig(level=config.server.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    warning = exposed_secrets(config)
    if warning:
        logging.getLogger("bootsrv").warning("%s", warning)
    asyncio.run(serve(config))
    return 0


COMMANDS = {"serve": _serve, "check-config": _check_config, "disk": _disk, "snapshot": _snapshot,
            "status": _status, "target": _target, "client": _client, "schedule": _schedule}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, StartupError, DiskToolError, ConnectionError, RuntimeError) as exc:
        print(f"bootsrv: {exc}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"bootsrv: {exc.filename}: no such file", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
