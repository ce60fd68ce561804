"""Wake-on-LAN: `client.wake` {"names": [...]} | {"all": true} | {"image": NAME} sends each
client its magic packet. A worker thread sends (a few sendto calls, off the event loop)."""

from __future__ import annotations

from typing import Any

from bootsrv.ops.registry import operation
from bootsrv.runtime.view import ApplianceView
from bootsrv.wake.clients import wake


@operation("client.wake")
def client_wake(view: ApplianceView, args: dict[str, Any]) -> dict[str, Any]:
    return {"sent": wake(view.config, view.sleepers(), args)}
