"""Helpers for the snapshot tests of disks on Ceph RBD: the server's configuration (one RBD
[[disk]] with the snapshot settings of the VHD tests), and the `rbd` CLI of the test cluster
as the real peer that reads snapshots back (`rbd export`), applies diffs (`rbd import-diff`)
and counts usage (`rbd du`)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.ceph import CephCluster, run_client
from tests.support.rbd_lu import rbd_config
from tests.support.snapshots import SNAPSHOTS_SECTION

DISK = "rbd0"  # the [[disk]] name rbd_config gives


def rbd_snapshot_config(cluster: CephCluster, image: str, size: str = "64MiB", extra: str = "") -> str:
    return rbd_config(cluster, image, size) + SNAPSHOTS_SECTION + extra


def rbd(cluster: CephCluster, *args: str, timeout: float = 300) -> str:
    """The rbd CLI on the test cluster as the tests' client; fails the test on a non-zero exit."""
    return run_client(["rbd", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring", str(cluster.keyring),
                       *args], timeout=timeout).stdout


def rbd_export(cluster: CephCluster, spec: str, out: Path) -> bytes:
    """`rbd export POOL/IMAGE[@SNAP]` to a file; its bytes (the file is removed)."""
    out.unlink(missing_ok=True)
    rbd(cluster, "export", f"{cluster.pool}/{spec}", str(out))
    data = out.read_bytes()
    out.unlink()
    return data


def rbd_snapshot_names(cluster: CephCluster, image: str) -> list[str]:
    rows = json.loads(rbd(cluster, "snap", "ls", "--format", "json", f"{cluster.pool}/{image}"))
    return [row["name"] for row in rows]


def rbd_du(cluster: CephCluster, image: str) -> dict[str, int]:
    """`rbd du`'s USED per snapshot name (and "" for the image itself)."""
    rows = json.loads(rbd(cluster, "du", "--format", "json", f"{cluster.pool}/{image}"))["images"]
    return {row.get("snapshot", ""): row["used_size"] for row in rows}


def snapshot_name(row: dict) -> str:
    """The RBD snapshot behind a row of `bootsrv snapshot list --json` (file = rbd:POOL/IMAGE@NAME)."""
    return row["file"].rpartition("@")[2]
