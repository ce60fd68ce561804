"""The throw-away Ceph cluster works for what the RBD backend will need: librbd from the venv
(aio with 32 in flight), snapshot, protect, a v2 clone, and qemu-img's rbd: driver as a peer."""

from __future__ import annotations

import json
import random

import pytest

from tests.support.ceph import CephCluster, run_client
from tests.support.rbd_io import aio_read_all, aio_write_all

pytestmark = pytest.mark.e2e

SIZE = 16 * 1024 * 1024
CHUNK = 128 * 1024  # 128 requests: the window of 32 fills and drains several times


def test_image_aio_snapshot_clone_and_qemu_img(ceph_cluster: CephCluster, tmp_path):
    import rbd

    data = random.Random(19).randbytes(SIZE)
    with ceph_cluster.ioctx() as ioctx:
        rbd.RBD().create(ioctx, "smoke", SIZE)
        with rbd.Image(ioctx, "smoke") as image:
            aio_write_all(image, data, CHUNK)
            assert aio_read_all(image, SIZE, CHUNK) == data
            image.create_snap("base")
            image.protect_snap("base")
        rbd.RBD().clone(ioctx, "smoke", "base", ioctx, "smoke-child")
        with rbd.Image(ioctx, "smoke-child", read_only=True) as child:
            # a v2 clone: the cluster requires mimic clients, so librbd's "auto" format picks 2
            assert child.op_features() & rbd.RBD_OPERATION_FEATURE_CLONE_CHILD
            assert child.parent_info()[1:] == ("smoke", "base")

    info = json.loads(run_client(["qemu-img", "info", "--output=json", ceph_cluster.qemu_url("smoke-child")]).stdout)
    assert (info["format"], info["virtual-size"]) == ("raw", SIZE)
    raw = tmp_path / "same.raw"
    raw.write_bytes(data)
    run_client(["qemu-img", "compare", "-f", "raw", "-F", "raw", ceph_cluster.qemu_url("smoke-child"), str(raw)])
