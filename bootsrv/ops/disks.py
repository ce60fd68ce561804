"""Disk files: growing one, online when this server serves it; converting one, as a task."""

from __future__ import annotations

from typing import Any

from bootsrv import disktool
from bootsrv.ops.registry import operation
from bootsrv.runtime.tasks import Task
from bootsrv.runtime.view import ApplianceView


@operation("disk.extend", task=lambda args: f"extend {args['path']} to {args['size']} bytes")
def disk_extend(view: ApplianceView, args: dict[str, Any], task: Task) -> str:
    """A task: it waits for the disk's in-flight I/O and rewrites the file's metadata (a
    differencing disk also takes the new end over from its parent: seconds per 10 GiB)."""
    return view.extend_disk(str(args["path"]), int(args["size"]), task.progress)


@operation("disk.convert", task=lambda args: f"convert {args['src']} -> {args['dst']}", local_only=True)
def disk_convert(view: ApplianceView, args: dict[str, Any], task: Task) -> str:
    """The CLI's `disk convert` run here when this server runs, so it is a task the dashboard
    shows: the same copy, into DST.partial then renamed."""
    kind = args.get("type")
    return disktool.convert(str(args["src"]), str(args["dst"]), None if kind is None else str(kind), task.progress)
