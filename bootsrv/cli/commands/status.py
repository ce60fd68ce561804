"""`bootsrv status`: what the running server serves now."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bootsrv.cli.common import ask, config_option, size_text, when


def register(commands: Any) -> None:
    status = commands.add_parser("status", help="what the running server serves: disks, sessions, schedules")
    config_option(status)
    status.add_argument("--json", action="store_true")
    status.set_defaults(run=_status)


def _status(args: argparse.Namespace) -> int:
    status = ask(args, "status")
    status["cluster"] = ask(args, "cluster")
    if args.json:
        print(json.dumps(status, indent=2))
        return 0
    print(f"bootsrv pid {status['pid']}, up {status['uptime'] / 3600:.1f} h, portals {', '.join(status['portals'])}, "
          f"{status['sessions']} session(s)")
    clients = status["clients"]
    print("  services: " + ", ".join(f"{name} {state}" for name, state in status["services"].items())
          + f"; clients {clients['total']} ({clients['adopted']} adopted, {clients['disks_open']} disks open)")
    cluster = status["cluster"]
    if cluster["health"] is not None:
        print(f"  node {cluster['node']}; Ceph cluster {cluster['health']}")
        if cluster["fenced"]:
            print(f"  FENCED: {cluster['fenced']}")
        for disk in cluster["disks"]:
            held = ("this node" if disk["here"] else f"node {disk['node'] or '(unknown)'}") if disk["address"] else "no node"
            print(f"  disk {disk['name']:<16} {disk['path']} served by {held}"
                  + (f" (Ceph client {disk['address']})" if disk["address"] else ""))
    for image in status["images"]:
        edit = image["edit"]
        print(f"  image {image['name']:<15} version {image['current']} current ({image['versions']} kept)"
              + (f"; {edit['client']} editing over version {edit['base']}" if edit else "")
              + (f"; not on it: {', '.join(image['behind'])}" if image["behind"] else ""))
    for disk in status["disks"]:
        print(f"  disk {disk['name']:<16} {size_text(disk['size']):>10}  {disk['sessions']} session(s)  "
              f"{disk['snapshots']} snapshot(s), {size_text(disk['snapshot_bytes'])}")
    for row in status["schedules"]:
        print(f"  schedule {row['name']} ({row['cron']}, disks {' '.join(row['disks'])}, export {row['export']}): "
              f"last run {when(row['last_run'])} {row['last_result']}; next run {when(row['next_run'])}")
    for mount in status["mounts"]:
        print(f"  snapshot {mount['id']} of {mount['disk']} mounted" + (" as iSCSI" if mount["iscsi"] else "")
              + (f" at {mount['local']}" if mount["local"] else ""))
    return 0
