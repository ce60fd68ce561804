"""The one table of operations that the admin socket, the web API and the CLI share.

An operation is a function of the appliance's view and a JSON object of arguments,
registered by name with `@operation`. `on_loop` ones read state the event loop owns
(sessions, leases) and are quick; the rest (snapshots, exports) run on a worker
thread so the loop keeps serving disks. `edits_config` ones change the configuration
file instead: they get a `ConfigEdit`, and `dispatch` saves it and applies the saved
file, so the CLI can run the same edit on the file alone when no server runs.

`task=TITLE` ones are long (a convert, an export): each call becomes a task in the
appliance's `TaskRegistry` (state, progress, log; `task.list`, `task.show`), and `run`
gets the task as a third argument to report progress through. `TITLE(args)` names it
for humans. Called with `"background": true` the answer is the task at once
(`{"task": TASK}`) and the work goes on: that is how the CLI follows it and draws
its progress; without, the answer waits for the result, as for any operation.

`dispatch` answers `{"ok": true, "result": ...}` or `{"ok": false, "error": "..."}`
and never raises: an expected failure says what is wrong in one line, anything else
is logged with its traceback and reported as an internal error, and the server goes on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bootsrv.config import ConfigError, StartupError
from bootsrv.confedit import ConfigEdit
from bootsrv.disktool import DiskToolError
from snapshots.engine import SnapshotError
from snapshots.localmount import MountError
from target.stores.errors import StoreError

from bootsrv.progress import Cancelled
from bootsrv.runtime.tasks import STOPPED, Task, TaskLimit, running_on_this_thread

if TYPE_CHECKING:
    from bootsrv.runtime.view import ApplianceView

log = logging.getLogger("bootsrv.ops")
# What an operation raises when the request cannot be done: the message is the answer.
EXPECTED = (SnapshotError, MountError, StoreError, ConfigError, StartupError, OSError, KeyError, ValueError,
            DiskToolError, Cancelled)


class OperationFailed(Exception):
    """An operation answered with an error (the server's one-line message)."""


@dataclass(frozen=True)
class Operation:
    name: str
    run: Callable[..., Any]  # (view, args) -> result, or (ConfigEdit, args) -> message when edits_config
    on_loop: bool = False
    edits_config: bool = False
    task: Callable[[dict[str, Any]], str] | None = None  # long: a task titled task(args); run(view, args, task)
    # Names any file of the server's (a convert's source and destination): for the CLI and the
    # owner-only admin socket, never the web API, whose token must not read files as root.
    local_only: bool = False


OPERATIONS: dict[str, Operation] = {}


def operation(name: str, *, on_loop: bool = False, edits_config: bool = False,
              task: Callable[[dict[str, Any]], str] | None = None,
              local_only: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(run: Callable[..., Any]) -> Callable[..., Any]:
        if name in OPERATIONS:
            raise RuntimeError(f"operation {name!r} registered twice")
        if task is not None and (on_loop or edits_config):
            raise RuntimeError(f"operation {name!r}: a task runs on a worker thread and edits no configuration")
        OPERATIONS[name] = Operation(name, run, on_loop=on_loop or edits_config, edits_config=edits_config,
                                     task=task, local_only=local_only)
        return run
    return register


def names() -> str:
    return ", ".join(sorted(OPERATIONS))


def edit_file(path: str | Path, name: str, args: dict[str, Any]) -> str:
    """Run one `edits_config` operation on the file and save it; returns what was done."""
    op = OPERATIONS.get(name)
    if op is None or not op.edits_config:
        edits = ", ".join(sorted(n for n, o in OPERATIONS.items() if o.edits_config))
        raise ConfigError(f"no configuration edit {name!r}; edits: {edits}")
    editor = ConfigEdit(path)
    try:
        message = op.run(editor, args)
    except KeyError as exc:
        raise ConfigError(f"{name}: {exc.args[0]} is needed") from None
    editor.save()
    return str(message)


def apply_edit(view: "ApplianceView", name: str, args: dict[str, Any]) -> dict[str, Any]:
    """What the wizards do: change the file (comments kept), then apply the saved file."""
    message = edit_file(view.config.path, name, args)
    return {"message": message, **view.reload()}


def _call(op: Operation, view: "ApplianceView", args: dict[str, Any]) -> Any:
    return apply_edit(view, op.name, args) if op.edits_config else op.run(view, args)


async def dispatch(view: "ApplianceView", name: str, args: Any) -> dict[str, Any]:
    op = OPERATIONS.get(name)
    if op is None or not isinstance(args, dict):
        return {"ok": False, "error": f"no operation {name!r}; operations: {names()}"}
    if op.task is not None:
        return await _as_task(view, op, args)
    if op.on_loop:
        return _answer(name, _call, op, view, args)
    return await asyncio.get_running_loop().run_in_executor(None, _answer, name, _call, op, view, args)


def _answer(name: str, run: Callable[..., Any], *args: Any) -> dict[str, Any]:
    """`run(*args)` as dispatch answers it, never raising."""
    try:
        result = run(*args)
    except EXPECTED as exc:
        log.info("%s failed: %s", name, exc)
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # the caller sees the failure, the server keeps running
        log.exception("%s failed", name)
        return {"ok": False, "error": f"internal error: {exc}"}
    return {"ok": True, "result": result}


async def _as_task(view: "ApplianceView", op: Operation, args: dict[str, Any]) -> dict[str, Any]:
    assert op.task is not None
    titled = _answer(op.name, op.task, args)  # a missing argument fails here, before any task exists
    if not titled["ok"]:
        return titled
    try:
        task = view.tasks.start(op.name, titled["result"])
    except TaskLimit as exc:
        return {"ok": False, "error": str(exc)}
    running = view.tasks.run(task, lambda: _run_task(op, view, args, task))
    running.add_done_callback(lambda done: _never_started(done, task))
    if args.get("background"):
        return {"ok": True, "result": {"task": task.as_dict()}}  # the worker goes on; the task tells how it ends
    try:
        return await running
    except asyncio.CancelledError:
        return {"ok": False, "error": f"{op.name}: {STOPPED}"}


def _never_started(done: "asyncio.Future[Any]", task: Task) -> None:
    """A task still waiting for a thread when the server stopped: it fails, never ran."""
    if done.cancelled():
        task.fail(STOPPED)


def _run_task(op: Operation, view: "ApplianceView", args: dict[str, Any], task: Task) -> dict[str, Any]:
    with running_on_this_thread(task):
        answer = _answer(op.name, op.run, view, args, task)
    if answer["ok"]:
        task.finish(answer["result"])
    else:
        task.fail(answer["error"])
    return answer
