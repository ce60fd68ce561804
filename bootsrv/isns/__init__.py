"""iSNS (RFC 4171): this server registers its entity, portals and targets with an iSNS
server, so that initiators (and admins' tools) discover them there.

`wire` is the iSNSP framing and attributes, `messages` the requests and the sans-IO client
connection, `client` the asyncio service that keeps the registration in step.
"""

from __future__ import annotations

from typing import Callable

from bootsrv.config.model import Portal as ServerAddress
from bootsrv.isns.client import IsnsRegistrar
from bootsrv.isns.messages import Node
from target.iscsi.targets import TargetDirectory


def registrar(server: ServerAddress, node_name: str, bound: Callable[[], list[tuple[str, int]]],
              directory: TargetDirectory) -> IsnsRegistrar:
    """The service that registers every target of `directory` (configured ones, clients'
    boot disks, snapshot mounts) at the portals `bound` returns, as entity bootsrv:NODE."""
    service = IsnsRegistrar(server.host, server.port, f"bootsrv:{node_name}", bound,
                            lambda: [Node(t.name, t.alias) for t in list(directory.targets.values())])
    directory.on_change.append(service.changed)
    return service
