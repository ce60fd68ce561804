"""Faults of the test cluster's daemons, undone whatever happens: an OSD that stops answering
(SIGSTOP: its sockets stay open, as a hung or overloaded OSD's do, and nothing is lost)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from tests.support.ceph import CephCluster


@contextlib.contextmanager
def osd_frozen(cluster: CephCluster) -> Iterator[None]:
    """The cluster's one OSD stopped (every PG stalls) until the block ends, then resumed."""
    pid = cluster.pids["osd"]
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
