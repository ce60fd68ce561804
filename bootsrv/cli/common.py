"""What the commands share: the parser class, the --config option, asking the running
server, editing the configuration, and how sizes, times and tables are printed."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, NoReturn

from bootsrv.admin import call
from bootsrv.config import ConfigError, load_config, parse_size
from bootsrv.disktool import DiskToolError
from bootsrv.ops import OperationFailed, edit_file
from bootsrv.progress import Progress, renderer, run_shown

FOLLOW_EVERY = 0.25  # seconds between two looks at a task the server runs

DEFAULT_CONFIG = "/etc/bootsrv/bootsrv.toml"


class Parser(argparse.ArgumentParser):
    """Usage mistakes: one line naming what is wrong (and where help is), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def actions(commands: Any, name: str, help: str) -> Any:
    """A command with sub-actions (`disk create`, `disk info`, ...)."""
    return commands.add_parser(name, help=help).add_subparsers(dest="action", required=True, metavar="ACTION")


def config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", metavar="FILE", default=os.environ.get("BOOTSRV_CONFIG", DEFAULT_CONFIG),
                        help=f"the running server's configuration (default $BOOTSRV_CONFIG or {DEFAULT_CONFIG})")


def state_dir(args: argparse.Namespace) -> Path:
    return load_config(args.config).server.state_dir


def ask(args: argparse.Namespace, op: str, op_args: dict[str, Any] | None = None) -> Any:
    """One operation on the server that serves args.config (ConnectionError if none does)."""
    return call(state_dir(args), op, op_args)


def long_work(args: argparse.Namespace, op: str, op_args: dict[str, Any], title: str,
              here: Callable[[Progress], Any] | None) -> Any:
    """A long operation with its progress shown (a terminal line, `--json` lines, or nothing
    when stderr is not a terminal). When a server runs for args.config, it runs there as a
    task (on the dashboard too) and this follows it; when none runs, `here(progress)` does the
    work in this process (None: the operation needs the server). Returns the result."""
    as_json = bool(getattr(args, "json", False))
    try:
        state_dir = load_config(args.config).server.state_dir
        answer = call(state_dir, op, {**op_args, "background": True})
    except (ConfigError, ConnectionError):
        if here is None:
            raise
        return run_shown(here, renderer(op, title, "bytes", as_json))
    except OperationFailed as exc:  # a server older than this command (a package upgrade not yet restarted)
        if here is None or not str(exc).startswith(f"no operation {op!r}"):
            raise
        return run_shown(here, renderer(op, title, "bytes", as_json))
    if not isinstance(answer, dict) or "task" not in answer:
        return answer  # a server older than tasks did the work before answering
    started = answer["task"]
    return _follow(state_dir, started, renderer(op, started["title"], started["unit"], as_json))


def _follow(state_dir: Path, task: dict[str, Any], shown: Any) -> Any:
    try:
        while task["state"] == "running":
            time.sleep(FOLLOW_EVERY)
            task = call(state_dir, "task.show", {"id": task["id"]})
            shown.update(task)
    except KeyboardInterrupt:
        print(f"\nthe server goes on with task {task['id']} (bootsrv task show {task['id']})", file=sys.stderr)
        raise
    except (ConnectionError, OperationFailed) as exc:  # not "not running": it was, and took the task
        raise OperationFailed(f"bootsrv stopped without answering {task['kind']} (task {task['id']}, "
                              f"{task['title']}): {exc}") from None
    final = {key: task[key] for key in ("state", "done", "total", "unit", "rate", "eta")}
    if task["state"] == "failed":
        shown.close({**final, "task": task["id"], "error": task["error"]})
        raise OperationFailed(task["error"])
    shown.close({**final, "task": task["id"], "result": task["result"]})
    return task["result"]


def edit(args: argparse.Namespace, op: str, edit_args: dict[str, Any]) -> int:
    """A running server makes the change itself (and applies it); else the file is edited here."""
    config = load_config(args.config)
    try:
        result = call(config.server.state_dir, "config.edit", {"op": op, "args": edit_args})
    except ConnectionError:
        print(f"{args.config}: {edit_file(args.config, op, edit_args)}")
        print("bootsrv is not running: the change takes effect when it starts")
        return 0
    print(f"{config.path}: {result['message']}")
    for line in result["applied"]:
        print(f"applied: {line}")
    if result["restart_needed"]:
        print(f"restart bootsrv for: {', '.join(result['restart_needed'])}")
    return 0


def size_arg(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    size = parse_size(text)
    if size is None or size % 512:
        raise DiskToolError(f"{what}: expected a size in bytes, a multiple of 512, like 20GiB; got {text!r}")
    return size


def when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def size_text(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def print_rows(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    widths = [max([len(column)] + [len(str(row[column])) for row in rows]) for column in columns]
    print("  ".join(column.upper().ljust(width) for column, width in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row[column]).ljust(width) for column, width in zip(columns, widths)))


__all__ = ["DEFAULT_CONFIG", "Parser", "actions", "ask", "config_option", "edit", "long_work", "print_rows",
           "size_arg", "size_text", "state_dir", "when"]
