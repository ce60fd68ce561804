"""`bootsrv task ...`: the long operations the running server runs or ran (converts, exports,
verifies, extends, flattens), with their progress and log, as the dashboard shows them."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bootsrv.cli.common import actions, ask, config_option, print_rows, size_text, when


def register(commands: Any) -> None:
    task = actions(commands, "task", "the server's long operations: state, progress, log")
    listing = task.add_parser("list", help="running and finished tasks, newest first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    show = task.add_parser("show", help="one task with its log")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_show)
    for sub in (listing, show):
        config_option(sub)


def _list(args: argparse.Namespace) -> int:
    tasks = ask(args, "task.list")["tasks"]
    if args.json:
        print(json.dumps(tasks, indent=2))
        return 0
    rows = [{"id": t["id"], "state": t["state"], "progress": _progress(t), "started": when(t["started"]),
             "title": t["title"]} for t in tasks]
    print_rows(rows, False, ["id", "state", "progress", "started", "title"])
    return 0


def _show(args: argparse.Namespace) -> int:
    task = ask(args, "task.show", {"id": args.id})
    if args.json:
        print(json.dumps(task, indent=2))
        return 0
    print(f"task {task['id']} ({task['kind']}): {task['title']}")
    print(f"  {task['state']}, {_progress(task)}, started {when(task['started'])}, ended {when(task['ended'])}")
    if task["error"]:
        print(f"  error: {task['error']}")
    for line in task["log"]:
        print(f"  {when(line['time'])} {line['level']:<7} {line['message']}")
    return 0


def _progress(task: dict[str, Any]) -> str:
    done, total = task["done"], task["total"]
    amount = size_text(done) if task["unit"] == "bytes" else str(done)
    if not total:
        return amount
    return f"{100 * done // total}% of {size_text(total) if task['unit'] == 'bytes' else total}"
