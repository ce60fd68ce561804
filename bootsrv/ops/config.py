"""Changing what is served: re-read the file, edit it (the wizards of Microsoft's
iSCSI target: add and remove clients, targets, disks and schedules), forget an
adopted client. Edits are `edits_config` operations: each changes a `ConfigEdit`
and returns what it did; the registry saves the file and applies it."""

from __future__ import annotations

from typing import Any

from bootsrv.confedit import ConfigEdit
from bootsrv.ops.registry import apply_edit, operation
from bootsrv.runtime.view import ApplianceView


@operation("config.reload", on_loop=True)
def reload(view: ApplianceView, args: dict[str, Any]) -> dict[str, list[str]]:
    return view.reload()


@operation("config.edit", on_loop=True)
def edit(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    """Any edit by name ({"op": "client.add", "args": {...}}): what the CLI sends, so that a
    server and a CLI of different versions agree on one operation name for all edits."""
    return apply_edit(view, str(args["op"]), dict(args.get("args") or {}))


@operation("client.forget", on_loop=True)
def forget(view: ApplianceView, args: dict[str, Any]) -> str:
    return view.forget_adopted(str(args["name"]), bool(args.get("delete_disk")))


@operation("client.add", edits_config=True)
def client_add(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_client(a["name"], a["mac"], a["image"], a.get("ip", ""), bool(a.get("reset_on_boot")))
    return f"client {a['name']} added"


@operation("client.remove", edits_config=True)
def client_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("client", "name", a["name"])
    return f"client {a['name']} removed (its disk file and snapshots stay)"


@operation("target.create", edits_config=True)
def target_create(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_target(a["iqn"].lower(), list(a.get("disks", [])), [i.lower() for i in a.get("initiators", [])],
                    a.get("alias", ""))
    return f"target {a['iqn']} created"


@operation("target.remove", edits_config=True)
def target_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("target", "iqn", a["iqn"])
    return f"target {a['iqn']} removed"


@operation("target.assign", edits_config=True)
def target_assign(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.append("target", "iqn", a["iqn"], "luns", a["disk"])
    return f"disk {a['disk']} assigned to {a['iqn']}"


@operation("target.allow", edits_config=True)
def target_allow(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.append("target", "iqn", a["iqn"], "initiators", a["initiator"].lower())
    return f"initiator {a['initiator']} allowed on {a['iqn']}"


@operation("image.add", edits_config=True)
def image_add(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_image(a["name"], a["path"])
    return f"image {a['name']} added ({a['path']}, version 1)"


@operation("disk.add", edits_config=True)
def disk_add(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_disk(a["name"], a["path"], a.get("size", ""), bool(a.get("readonly")))
    return f"disk {a['name']} added"


@operation("disk.remove", edits_config=True)
def disk_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("disk", "name", a["name"])
    return f"disk {a['name']} removed (its file stays)"


@operation("schedule.add", edits_config=True)
def schedule_add(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.add_schedule(a["name"], a["cron"], list(a.get("disks", ["*"])), a.get("export", "none"), a.get("keep", {}))
    return f"schedule {a['name']} added"


@operation("schedule.remove", edits_config=True)
def schedule_remove(edit: ConfigEdit, a: dict[str, Any]) -> str:
    edit.remove("snapshots.schedule", "name", a["name"])
    return f"schedule {a['name']} removed (its snapshots stay)"

