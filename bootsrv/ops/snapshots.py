"""Snapshots and schedules: take, list, delete, roll back, mount, export, run a schedule now.
These open and copy disk files, so they run on a worker thread, never on the event loop."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.tasks import Task
from bootsrv.runtime.view import ApplianceView
from snapshots.catalog import SnapshotState
from snapshots.engine import SnapshotError
from snapshots.export import verify

log = logging.getLogger("bootsrv.ops")


@operation("snapshot.create")
def create(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.engine.create(str(args["disk"]), str(args.get("label", ""))).as_dict()


@operation("snapshot.list")
def listing(view: ApplianceView, args: dict[str, Any]) -> list[dict[str, Any]]:
    engine, disk = view.engine, args.get("disk")
    if disk is not None:
        engine.volume(disk)  # an unknown disk is an error, not an empty list
    exports: dict[int, list[dict[str, Any]]] = {}
    for export in engine.catalog.exports(disk=disk):
        exports.setdefault(export.snapshot, []).append(export.as_dict())
    rows = []
    for snap in engine.catalog.snapshots(disk):
        if snap.state == SnapshotState.CREATING:
            continue
        row = snap.as_dict()
        row["exports"] = exports.get(snap.id, [])
        if snap.mount_iscsi:
            row["iscsi_target"] = view.backup.mount_target_name(snap.id)
        rows.append(row)
    return rows


@operation("snapshot.delete")
def delete(view: ApplianceView, args: dict[str, Any]) -> None:
    view.engine.delete(int(args["id"]))


@operation("snapshot.rollback")
def rollback(view: ApplianceView, args: dict[str, Any]) -> None:
    view.engine.rollback(int(args["id"]), bool(args.get("force")))


@operation("snapshot.mount")
def mount(view: ApplianceView, args: dict[str, Any]) -> dict[str, str]:
    snap_id = int(args["id"])
    if args.get("local"):
        return {"file": view.backup.mount_local(snap_id, Path(args["local"]))}
    return {"target": view.backup.mount_iscsi(snap_id)}


@operation("snapshot.unmount")
def unmount(view: ApplianceView, args: dict[str, Any]) -> list[str]:
    return view.backup.unmount(int(args["id"]))


@operation("snapshot.export", task=lambda args: f"export snapshot {args['id']}"
           + (f" since {args['incremental_from']}" if args.get("incremental_from") is not None else ""))
def export(view: ApplianceView, args: dict[str, Any], task: Task) -> dict[str, Any]:
    base = args.get("incremental_from")
    return view.backup.export(int(args["id"]), args.get("dest"), str(args.get("format", "vhd")),
                              None if base is None else int(base), task.progress)


@operation("snapshot.verify", task=lambda args: f"verify {args['path']}", local_only=True)
def verify_export(view: ApplianceView, args: dict[str, Any], task: Task) -> dict[str, Any]:
    """Re-read an export chain as a task (hours on a big disk); findings go to its log too."""
    findings = verify(str(args["path"]), task.progress)
    for finding in findings:
        log.warning("%s", finding)
    return {"path": str(args["path"]), "findings": findings}


@operation("schedule.run", task=lambda args: f"run schedule {args.get('name')}")
def run_schedule(view: ApplianceView, args: dict[str, Any], task: Task) -> str:
    """A task: its snapshots and exports (the scheduler's log lines) are the task's log."""
    scheduler, name = view.scheduler, args.get("name")
    schedule = next((s for s in scheduler.schedules if s.name == name), None) if scheduler else None
    if scheduler is None or schedule is None:
        raise SnapshotError(f"no schedule named {name!r}")
    return scheduler.run(schedule, by_hand=True)
