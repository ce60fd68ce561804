"""Wake-on-LAN: `client.wake` {"names": [...]} | {"all": true} | {"image": NAME} sends each
client its magic packet; `wake.run` {"name": SCHEDULE} wakes whom a [[wake.schedule]] wakes, now. A worker thread sends (a few sendto calls, off the event loop)."""

from __future__ import annotations

from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.view import ApplianceView
from bootsrv.wake.clients import wake
from bootsrv.wake.schedule import run_schedule


@operation("client.wake")
def client_wake(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return {"sent": wake(view.config, view.sleepers(), args)}


@operation("wake.run")
def wake_run(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return {"sent": run_schedule(view.config, view.sleepers(), str(args.get("name")))}
