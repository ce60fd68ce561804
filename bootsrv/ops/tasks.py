"""Tasks: the long operations this server runs or ran, newest first, and one with its log
(read on the event loop: the registry is a few hundred small records under a lock)."""

from __future__ import annotations

from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.view import ApplianceView


@operation("task.list", on_loop=True)
def task_list(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return {"tasks": view.tasks.list()}


@operation("task.show", on_loop=True)
def task_show(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.tasks.get(str(args["id"])).with_log()
