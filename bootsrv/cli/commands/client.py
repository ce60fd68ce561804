"""`bootsrv client ...`: diskless clients, configured ([[client]]) and adopted (pc-<mac>)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bootsrv import adopted
from bootsrv.admin import call
from bootsrv.cli.common import actions, ask, config_option, edit, print_rows
from bootsrv.config import load_config
from bootsrv.naming import client_disk_path
from bootsrv.runtime.disks import configure_ceph, image_path
from bootsrv.wake.clients import configured, wake
from bootsrv.wake.schedule import run_schedule
from bootsrv.wake.send import WakeError
from target.stores.errors import StoreError
from target.stores.registry import remove_store, rename_store


def register(commands: Any) -> None:
    client = actions(commands, "client", "diskless clients: add, list, remove, reset, wake")
    add = client.add_parser("add", help="a new client: its own disk over an image, booted by MAC")
    add.add_argument("name")
    add.add_argument("--mac", required=True)
    add.add_argument("--image", required=True, help="an [[image]] name")
    add.add_argument("--ip", default="", help="a fixed address (DHCP full mode)")
    add.add_argument("--reset-on-boot", action="store_true", help="start from the image at every boot")
    add.set_defaults(run=lambda args: edit(args, "client.add", {
        "name": args.name, "mac": args.mac, "image": args.image, "ip": args.ip,
        "reset_on_boot": args.reset_on_boot}))
    listing = client.add_parser("list", help="clients, and whether each is online (when the server runs)")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    remove = client.add_parser("remove", help="forget a client (its disk file and snapshots stay)")
    remove.add_argument("name")
    remove.add_argument("--delete-disk", action="store_true", help="delete its disk file too")
    remove.set_defaults(run=_remove)
    keep = client.add_parser("keep", help="turn an adopted client (pc-...) into a [[client]], disk and all")
    keep.add_argument("name", help="the adopted client's name (pc-<mac>)")
    keep.add_argument("--name", dest="new_name", required=True, help="its name as a [[client]]")
    keep.set_defaults(run=_keep)
    reset = client.add_parser("reset", help="discard the client's changes: it starts from its image's current "
                              "version (its snapshots stay)")
    reset.add_argument("name")
    reset.add_argument("--force", action="store_true", help="drop its sessions if it is logged in")
    reset.set_defaults(run=_reset)
    wake = client.add_parser("wake", help="power clients on: Wake-on-LAN magic packets on the boot interface "
                             "(or a room's directed broadcast, [wake])")
    wake.add_argument("names", nargs="*", metavar="NAME")
    wake.add_argument("--all", action="store_true", help="every client, configured and adopted")
    wake.add_argument("--image", metavar="IMAGE", help="every client of this image")
    wake.add_argument("--schedule", metavar="NAME", help="whom the [[wake.schedule]] NAME wakes, now")
    wake.add_argument("--json", action="store_true")
    wake.set_defaults(run=_wake)
    for sub in (add, listing, remove, keep, reset, wake):
        config_option(sub)


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        live = {row["name"]: row for row in call(config.server.state_dir, "clients")}
    except ConnectionError:
        live = {}

    def state(name: str) -> str:
        return ("online" if live[name]["online"] else "offline") if name in live else "-"

    def version(name: str) -> str:
        row = live.get(name)
        if row is None:
            return "-"
        if row.get("editing"):
            return f"edit of {row['editing']}"
        shown = "?" if row.get("version") is None else str(row["version"])
        return shown + (f" (current: {row['current']})" if row.get("behind") else "")

    rows = [{"name": c.name, "mac": c.mac, "image": c.image, "ip": c.ip or live.get(c.name, {}).get("ip") or "-",
             "reset_on_boot": c.reset_on_boot, "state": state(c.name), "origin": "config",
             "version": version(c.name)} for c in config.clients]
    for record in adopted.load(config.server.state_dir):
        rows.append({"name": record.name, "mac": record.mac, "image": record.image,
                     "ip": live.get(record.name, {}).get("ip") or "-", "reset_on_boot": False,
                     "origin": "adopted", "state": state(record.name),
                     "version": version(record.name)})  # (--json keeps the old key order)
    print_rows(rows, args.json, ["name", "mac", "ip", "image", "version", "state", "reset_on_boot", "origin"])
    return 0


def _wake(args: argparse.Namespace) -> int:
    """Through the running server (it knows the clients adopted since, and has the rights to bind
    to the interface); with none running the packets go from here: waking needs no server state."""
    if sum((bool(args.names), args.all, args.image is not None, args.schedule is not None)) != 1:
        print("bootsrv client wake: name clients, or give --all, --image IMAGE or --schedule NAME (one of them)",
              file=sys.stderr)
        return 2
    request = {"names": args.names} if args.names else {"all": True} if args.all else {"image": args.image}
    config = load_config(args.config)
    try:
        if args.schedule is not None:
            sent = call(config.server.state_dir, "wake.run", {"name": args.schedule})["sent"]
        else:
            sent = call(config.server.state_dir, "client.wake", request)["sent"]
    except ConnectionError:
        try:
            sleepers = configured(config)
            sent = (run_schedule(config, sleepers, args.schedule) if args.schedule is not None
                    else wake(config, sleepers, request))
        except WakeError as exc:
            raise SystemExit(f"bootsrv: {exc}") from None
    if args.json:
        print(json.dumps(sent, indent=2))
    elif not sent:
        print("no clients to wake")
    for row in [] if args.json else sent:
        print(f"{row['client']}: magic packet for {row['mac']} sent to {row['to']}")
    return 0


def _reset(args: argparse.Namespace) -> int:
    done = ask(args, "client.reset", {"name": args.name, "force": args.force})
    was = "an unknown base" if done["was"] is None else f"version {done['was']}"
    print(f"{done['client']}: its changes are discarded; it boots version {done['version']} of image "
          f"{done['image']} (was on {was})")
    return 0


def _adopted(state_dir: Path, name: str) -> adopted.AdoptedClient | None:
    return next((r for r in adopted.load(state_dir) if r.name == name), None)


def _keep(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    record = _adopted(config.server.state_dir, args.name)
    if record is None:
        raise SystemExit(f"bootsrv: no adopted client {args.name!r} (client list shows them)")
    _forget_adopted(config.server.state_dir, args.name, delete_disk=False)
    image = image_path(config, record.image)
    configure_ceph(config)
    try:  # the [[client]] boots the same disk, changes and all
        rename_store(client_disk_path(config.server.state_dir, args.name, image),
                     client_disk_path(config.server.state_dir, args.new_name, image))
    except FileNotFoundError:
        pass  # it never got a disk
    except StoreError as exc:
        raise SystemExit(f"bootsrv: {exc}") from None
    return edit(args, "client.add", {"name": args.new_name, "mac": record.mac, "image": record.image})


def _remove(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    record = _adopted(config.server.state_dir, args.name)
    configure_ceph(config)
    if record is not None and not any(c.name == args.name for c in config.clients):
        print(_forget_adopted(config.server.state_dir, args.name, args.delete_disk, image_path(config, record.image)))
        return 0
    configured = next((c for c in config.clients if c.name == args.name), None)
    status = edit(args, "client.remove", {"name": args.name})
    if args.delete_disk:
        disk = client_disk_path(config.server.state_dir, args.name,
                                image_path(config, configured.image) if configured else None)
        try:
            remove_store(disk)
        except StoreError as exc:
            raise SystemExit(f"bootsrv: {exc}") from None
        print(f"deleted {disk}")
    return status


def _forget_adopted(state_dir: Path, name: str, delete_disk: bool, image: Path | None = None) -> str:
    """A running server drops the client's sessions and target; else only the record and disk go."""
    try:
        return str(call(state_dir, "client.forget", {"name": name, "delete_disk": delete_disk}))
    except ConnectionError:
        adopted.remove(state_dir, name)
        return adopted.dispose_disk(state_dir, name, delete_disk, image)
