"""`bootsrv schedule ...`: snapshot schedules in the configuration, and running one now."""

from __future__ import annotations

import argparse
from typing import Any

from bootsrv.admin import call
from bootsrv.cli.common import actions, ask, config_option, edit, print_rows, when
from bootsrv.config import load_config
from bootsrv.config.modes import ExportMode

KEEP_KINDS = ("last", "daily", "weekly", "monthly")


def register(commands: Any) -> None:
    schedule = actions(commands, "schedule", "snapshot schedules: add, list, remove, run one now")
    run_now = schedule.add_parser("run", help="take, export and prune as the schedule would, now")
    run_now.add_argument("name")
    run_now.set_defaults(run=_run)
    add = schedule.add_parser("add", help="snapshot disks on a cron schedule")
    add.add_argument("name")
    add.add_argument("--cron", required=True, help='five fields, e.g. "0 2 * * *" (02:00 daily)')
    add.add_argument("--disk", action="append", metavar="NAME", help="disk/client name or pattern "
                     "(repeat; default: all)")
    add.add_argument("--export", choices=[mode.value for mode in ExportMode], default=ExportMode.NONE.value)
    for kind in KEEP_KINDS:
        add.add_argument(f"--keep-{kind}", type=int, default=0, metavar="N")
    add.set_defaults(run=_add)
    listing = schedule.add_parser("list", help="schedules with their last and next run")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    remove = schedule.add_parser("remove", help="stop a schedule (its snapshots stay)")
    remove.add_argument("name")
    remove.set_defaults(run=lambda args: edit(args, "schedule.remove", {"name": args.name}))
    for sub in (run_now, add, listing, remove):
        config_option(sub)


def _run(args: argparse.Namespace) -> int:
    result = ask(args, "schedule.run", {"name": args.name})
    print(f"schedule {args.name}: {result}")
    return 0 if result == "ok" else 1


def _add(args: argparse.Namespace) -> int:
    keep = {kind: getattr(args, f"keep_{kind}") for kind in KEEP_KINDS}
    return edit(args, "schedule.add", {"name": args.name, "cron": args.cron, "disks": args.disk or ["*"],
                                       "export": args.export, "keep": keep})


def _list(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        live = {row["name"]: row for row in call(config.server.state_dir, "status")["schedules"]}
    except ConnectionError:
        live = {}
    rows = []
    for s in config.snapshots.schedules:
        run = live.get(s.name, {})
        kept = " ".join(f"{kind}={getattr(s.keep, kind)}" for kind in KEEP_KINDS if getattr(s.keep, kind))
        rows.append({"name": s.name, "cron": s.cron, "disks": " ".join(s.disks), "export": s.export,
                     "keep": kept or "all", "last_run": when(run.get("last_run")),
                     "result": run.get("last_result") or "-", "next_run": when(run.get("next_run"))})
    print_rows(rows, args.json, ["name", "cron", "disks", "export", "keep", "last_run", "result", "next_run"])
    return 0
