"""Disk files: growing one, online when this server serves it."""

from __future__ import annotations

from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.view import ApplianceView


@operation("disk.extend")
def disk_extend(view: ApplianceView, args: dict[str, Any]) -> str:
    """On a worker thread: it waits for the disk's in-flight I/O and rewrites the file's metadata."""
    return view.extend_disk(str(args["path"]), int(args["size"]))
