"""What is served now: `status`, `sessions`, `clients` (all read on the event loop)."""

from __future__ import annotations

from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.view import ApplianceView
from snapshots.catalog import Snapshot


@operation("status", on_loop=True)
def status(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return {**view.process(), "images": view.images(), "portals": view.portals(),
            "sessions": len(view.sessions()), "disks": view.disks(), "schedules": view.backup.schedules(),
            "services": view.service_status(), "clients": view.clients_summary(),
            "mounts": [_mount(s) for s in view.engine.catalog.snapshots() if s.mount_iscsi or s.mount_local]}


@operation("cluster")
def cluster(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    """This node among several on one Ceph cluster (librbd calls: a worker thread)."""
    return view.cluster()


def _mount(snap: Snapshot) -> dict[str, Any]:
    return {"id": snap.id, "disk": snap.disk, "iscsi": snap.mount_iscsi, "local": snap.mount_local}


@operation("sessions", on_loop=True)
def sessions(view: ApplianceView, args: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"tsih": s.tsih, "initiator": s.initiator_name, "target": s.target_name or "(discovery)"}
            for s in view.sessions()]


@operation("clients", on_loop=True)
def clients(view: ApplianceView, args: dict[str, Any]) -> list[dict[str, Any]]:
    return view.clients_overview()
