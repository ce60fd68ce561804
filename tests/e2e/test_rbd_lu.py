"""An RBD image served as a LU (issue 19, acceptance 1): real initiators (qemu-img over
iscsi://, libiscsi's tools) read and write it byte-identically, and
QEMU's own RBD driver reads the same bytes from the cluster; it grows online. The whole
conformance suite against a raw LU is tests/e2e/test_rbd_conformance.py."""

from __future__ import annotations

import random

import pytest

from tests.support.ceph import CephCluster, run_client
from tests.support.cli import run_cli
from tests.support.rbd_lu import RBD_IQN, rbd_config
from tests.support.server import start_server
from tests.support.tools import run

pytestmark = pytest.mark.e2e
MiB = 1 << 20
@pytest.fixture(scope="module")
def rbd_server(ceph_cluster: CephCluster, tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("rbd"), rbd_config(ceph_cluster, "lu1"))
    yield server
    assert server.stop() == 0, server.log_text()
    assert "Traceback" not in server.log_text()


def test_initiators_and_qemus_rbd_driver_see_the_same_bytes(rbd_server, ceph_cluster, tmp_path):
    url = rbd_server.url(RBD_IQN)
    data = random.Random(191).randbytes(40 * MiB) + bytes(24 * MiB)
    source, back = tmp_path / "in.raw", tmp_path / "out.raw"
    source.write_bytes(data)
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(source), url], timeout=300)
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", url, str(back)], timeout=300)
    assert back.read_bytes() == data
    # QEMU's own librbd driver, straight from the cluster: the same image.
    run_client(["qemu-img", "compare", "-f", "raw", "-F", "raw", url, ceph_cluster.qemu_url("lu1")], timeout=300)
    pages = run(["iscsi-inq", "-e", "1", url]).stdout  # libiscsi's own tools see a whole LU
    assert "DEVICE_IDENTIFICATION" in pages and "LOGICAL_BLOCK_PROVISIONING" in pages, pages
    assert f"Totalsize:{64 * MiB}" in run(["iscsi-readcapacity16", url]).stdout.replace(" ", "")

    # Online: READ CAPACITY answers the new size at once; the cluster's image is that size.
    done = run_cli("disk", "extend", "rbd:rbd/lu1", "--size", "96MiB", "-c", rbd_server.config, cwd=rbd_server.workdir)
    assert done.returncode == 0 and "sessions told" in done.stdout, done.stdout + done.stderr
    assert f"Totalsize:{96 * MiB}" in run(["iscsi-readcapacity16", url]).stdout.replace(" ", "")
    info = run_client(["qemu-img", "info", ceph_cluster.qemu_url("lu1")]).stdout
    assert f"({96 * MiB} bytes)" in info, info
