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
