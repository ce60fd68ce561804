"""Golden images: their versions, the maintenance edit, commit, revert, prune, and a
client moved to its image's current version. All on worker threads: they flush layers,
read whole files (a version's sha256) and wait for a disk's snapshot operations."""

from __future__ import annotations

from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.tasks import Task
from bootsrv.runtime.view import ApplianceView


@operation("image.versions")
def image_versions(view: ApplianceView, args: dict[str, Any]) -> list[dict[str, Any]]:
    rows = view.image_manager.overview()
    wanted = args.get("image")
    return [row for row in rows if row["name"] == wanted] if wanted else rows


@operation("image.edit")
def image_edit(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.edit(str(args["image"]), str(args["client"]))


@operation("image.install")
def image_install(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.install(str(args["image"]), str(args["client"]), str(args["iso"]))


@operation("image.extend")
def image_extend(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.extend(str(args["image"]), int(args["size"]))


@operation("image.flatten", task=lambda args: f"flatten image {args['image']}")
def image_flatten(view: ApplianceView, args: dict[str, Any], task: Task) -> dict[str, Any]:
    return view.image_manager.flatten(str(args["image"]), str(args.get("label", "")), task.progress)


@operation("image.commit")
def image_commit(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.commit(str(args["image"]), str(args.get("label", "")), bool(args.get("force")))


@operation("image.discard")
def image_discard(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.discard(str(args["image"]), bool(args.get("force")))


@operation("image.revert")
def image_revert(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.revert(str(args["image"]), int(args["to"]))


@operation("image.prune")
def image_prune(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.prune(str(args["image"]))


@operation("client.reset")
def client_reset(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return view.image_manager.reset_client(str(args["name"]), bool(args.get("force")))
