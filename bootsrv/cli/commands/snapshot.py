"""`bootsrv snapshot ...`: point-in-time copies of live disks, taken by the running server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bootsrv.cli.common import actions, ask, config_option, long_work, size_text, when
from snapshots.export import verify


def register(commands: Any) -> None:
    snap = actions(commands, "snapshot", "point-in-time copies of live disks: take, list, mount, export, "
                   "roll back, delete")
    create = snap.add_parser("create", help="freeze a disk's current content (clients keep running)")
    create.add_argument("disk")
    create.add_argument("--label", default="")
    create.set_defaults(run=_create)
    listing = snap.add_parser("list", help="snapshots with their time, size, mounts and exports")
    listing.add_argument("disk", nargs="?")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    delete = snap.add_parser("delete", help="remove a snapshot (VHD: its data merges into its neighbour; "
                             "RBD: the RBD snapshot is removed)")
    delete.add_argument("id", type=int)
    delete.set_defaults(run=_delete)
    mount = snap.add_parser("mount", help="read-only: as its own iSCSI target, or as DIR/disk.img here")
    mount.add_argument("id", type=int)
    how = mount.add_mutually_exclusive_group(required=True)
    how.add_argument("--iscsi", action="store_true")
    how.add_argument("--local", metavar="DIR")
    mount.set_defaults(run=_mount)
    unmount = snap.add_parser("unmount", help="undo snapshot mount")
    unmount.add_argument("id", type=int)
    unmount.set_defaults(run=_unmount)
    export = snap.add_parser("export", help="write the snapshot as a file for backup, with a sha256 manifest")
    export.add_argument("id", type=int)
    export.add_argument("dest_dir")
    export.add_argument("--format", choices=("vhd", "raw", "rbd-diff"), default="vhd",
                        help="rbd-diff: the `rbd export-diff` format, for `rbd import-diff`")
    export.add_argument("--incremental-from", type=int, metavar="ID",
                        help="only what changed since snapshot ID (a differencing VHD over ID's export, or an "
                             "rbd-diff from ID's snapshot)")
    export.add_argument("--json", action="store_true", help="progress and the outcome as JSON lines")
    export.set_defaults(run=_export)
    check = snap.add_parser("verify", help="re-read an export and the exports it builds on (in the server of "
                            "--config as a task when one runs)")
    check.add_argument("path")
    check.add_argument("--json", action="store_true", help="progress and the outcome as JSON lines")
    check.set_defaults(run=_verify)
    rollback = snap.add_parser("rollback", help="return the disk to this snapshot's content")
    rollback.add_argument("id", type=int)
    rollback.add_argument("--force", action="store_true", help="drop the client's sessions first")
    rollback.set_defaults(run=_rollback)
    for sub in (create, listing, delete, mount, unmount, export, check, rollback):  # verify runs here without one
        config_option(sub)


def _create(args: argparse.Namespace) -> int:
    snap = ask(args, "snapshot.create", {"disk": args.disk, "label": args.label})
    print(f"snapshot {snap['id']} of {snap['disk']} taken at {when(snap['created'])} "
          f"(writes held {snap['pause_ms']:.1f} ms)")
    return 0


def _list(args: argparse.Namespace) -> int:
    rows = ask(args, "snapshot.list", {"disk": args.disk})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'ID':>5}  {'DISK':<16} {'TAKEN':<19}  {'DATA':>10}  {'ORIGIN':<18} {'MOUNTED':<8} LABEL")
    for row in rows:
        mounted = ",".join(m for m, on in (("iscsi", row["mount_iscsi"]), ("local", row["mount_local"])) if on)
        state = "" if row["state"] == "ready" else f" [{row['state']}]"
        print(f"{row['id']:>5}  {row['disk']:<16} {when(row['created']):<19}  "
              f"{size_text(row['unique_bytes']):>10}  {row['origin']:<18} {mounted or '-':<8} {row['label']}{state}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    ask(args, "snapshot.delete", {"id": args.id})
    print(f"snapshot {args.id} deleted")
    return 0


def _mount(args: argparse.Namespace) -> int:
    result = ask(args, "snapshot.mount", {"id": args.id, "local": args.local})
    print(result.get("target") or result.get("file"))
    return 0


def _unmount(args: argparse.Namespace) -> int:
    print("unmounted: " + ", ".join(ask(args, "snapshot.unmount", {"id": args.id})))
    return 0


def _export(args: argparse.Namespace) -> int:
    """The server exports (it serves the disk), as a task this follows and draws."""
    result = long_work(args, "snapshot.export", {"id": args.id, "dest": str(Path(args.dest_dir).resolve()),
                                                 "format": args.format, "incremental_from": args.incremental_from},
                       f"export snapshot {args.id}", None)
    if not args.json:
        print(f"{result['path']}  sha256 {result['sha256']}" + (f"  (over {result['base']})" if result["base"] else ""))
    return 0


def _verify(args: argparse.Namespace) -> int:
    """In the server when one runs (a task, on the dashboard), else here: the same check."""
    path = str(Path(args.path).resolve())
    result = long_work(args, "snapshot.verify", {"path": path}, f"verify {path}",
                       lambda progress: {"path": path, "findings": verify(path, progress)})
    findings = result["findings"]
    if not args.json:
        print("\n".join(findings) if findings else f"{args.path}: ok (files, checksums and chain verified)")
    return 1 if findings else 0


def _rollback(args: argparse.Namespace) -> int:
    ask(args, "snapshot.rollback", {"id": args.id, "force": args.force})
    print(f"rolled back to snapshot {args.id}")
    return 0
