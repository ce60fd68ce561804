"""`bootsrv target ...`: the iSCSI targets of the configuration, their LUNs and initiators."""

from __future__ import annotations

import argparse
from typing import Any

from bootsrv.cli.common import actions, config_option, edit, print_rows
from bootsrv.config import load_config


def register(commands: Any) -> None:
    target = actions(commands, "target", "iSCSI targets: create, list, remove, assign disks, allow initiators")
    create = target.add_parser("create", help="a new target (its disks become LUN 0, 1, ...)")
    create.add_argument("iqn")
    create.add_argument("--disk", action="append", default=[], metavar="NAME", help="a [[disk]] to serve (repeat)")
    create.add_argument("--initiator", action="append", default=[], metavar="IQN",
                        help="an initiator allowed to log in (repeat; none = any)")
    create.add_argument("--alias", default="")
    create.set_defaults(run=lambda args: edit(args, "target.create", {
        "iqn": args.iqn, "disks": args.disk, "initiators": args.initiator, "alias": args.alias}))
    listing = target.add_parser("list", help="targets with their LUNs and allowed initiators")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    remove = target.add_parser("remove", help="delete a target (its disks stay)")
    remove.add_argument("iqn")
    remove.set_defaults(run=lambda args: edit(args, "target.remove", {"iqn": args.iqn}))
    assign = target.add_parser("assign", help="serve one more disk on a target (next LUN)")
    assign.add_argument("iqn")
    assign.add_argument("disk")
    assign.set_defaults(run=lambda args: edit(args, "target.assign", {"iqn": args.iqn, "disk": args.disk}))
    allow = target.add_parser("allow", help="let one more initiator log in to a target")
    allow.add_argument("iqn")
    allow.add_argument("initiator")
    allow.set_defaults(run=lambda args: edit(args, "target.allow", {"iqn": args.iqn, "initiator": args.initiator}))
    for sub in (create, listing, remove, assign, allow):
        config_option(sub)


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rows = [{"iqn": t.iqn, "luns": ",".join(t.luns) or "-", "initiators": ",".join(t.initiators) or "any",
             "chap": "yes" if t.chap else "no", "alias": t.alias} for t in config.targets]
    print_rows(rows, args.json, ["iqn", "luns", "initiators", "chap", "alias"])
    return 0
