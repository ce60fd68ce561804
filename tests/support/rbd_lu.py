"""bootsrv serving an RBD image of the test session's Ceph cluster (tests/support/ceph.py)
as a LU, for the RBD backend's tests."""

from __future__ import annotations

from tests.support.ceph import CephCluster

RBD_IQN = "iqn.2026-11.lan.bootsrv:rbd"


def rbd_config(cluster: CephCluster, image: str, size: str = "64MiB") -> str:
    """One [[disk]] on rbd:POOL/IMAGE (made on first use) behind one target; @PORT@ as start_server wants."""
    return f"""
[server]
state_dir = "state"
[iscsi]
portals = ["127.0.0.1:@PORT@"]
[ceph]
conf = "{cluster.conf}"
id = "{cluster.client_id}"
keyring = "{cluster.keyring}"
[[disk]]
name = "rbd0"
path = "rbd:{cluster.pool}/{image}"
size = "{size}"
[[target]]
iqn = "{RBD_IQN}"
luns = ["rbd0"]
"""


def peak_in_flight(log_text: str) -> int:
    """The most submitted requests an RBD store had in flight at once, from the server's log
    (RbdStore logs each new high from 16 on, at powers of two); 0 if none was logged."""
    import re
    return max((int(n) for n in re.findall(r"(\d+) requests in flight at once", log_text)), default=0)


def qemu_bench_4k(url: str, *, depth: int, count: int, write: bool = False, pattern: int = 0xA5) -> None:
    """qemu-img bench over iscsi://: `count` sequential 4 KiB requests, `depth` in flight,
    writes filling each block with `pattern`."""
    from tests.support.tools import run
    cmd = ["qemu-img", "bench", "-f", "raw", "-d", str(depth), "-c", str(count), "-s", "4096", "-S", "4096"]
    if write:
        cmd += ["-w", "--pattern", str(pattern)]
    run(cmd + [url], timeout=600)
