"""This bootsrv process as the other nodes on the same Ceph cluster see it: its name (recorded on
the RBD images it serves), its Ceph client address (what a blocklist names), whether the
cluster fenced it, and the cluster's health for `status`."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

from target.stores.errors import StoreError
from target.stores.rbd.cluster import connect, reason


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    portals: tuple[str, ...] = ()


_node = Node(socket.gethostname())
_fenced = ""


def set_node(node: Node) -> None:
    global _node
    _node = node


def node() -> Node:
    return _node


def fence(why: str) -> str:
    """Note that the cluster blocklisted this node's client; returns `why`."""
    global _fenced
    _fenced = why
    return why


def fenced() -> str:
    """Non-empty once the cluster blocklisted this node's client: it must restart to write again."""
    return _fenced


def my_address() -> str:
    return str(connect().get_addrs())


def cluster_health(timeout: int = 5) -> str:
    """The cluster's health in one line, as `ceph health` says it ("HEALTH_OK", or the status
    and its checks' summaries), or why it could not be asked."""
    import rados
    try:
        code, out, errs = connect().mon_command(json.dumps({"prefix": "health", "format": "json"}), b"",
                                                 timeout=timeout)
    except (rados.Error, StoreError) as exc:
        return f"unknown: {reason(exc) if isinstance(exc, rados.Error) else exc}"
    if code != 0:
        return f"unknown: {errs or reason(OSError(-code, ''))}"
    health = json.loads(out or b"{}")
    checks = "; ".join(check.get("summary", {}).get("message", name)
                       for name, check in sorted(health.get("checks", {}).items()))
    return health.get("status", "unknown") + (f": {checks}" if checks else "")
