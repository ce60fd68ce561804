"""The RBD data path submits its I/O (librbd's aio calls): one session has 32 and more
commands in flight with no thread each, what is written at that depth reads back the same
through QEMU's own RBD driver, and a session dropped with commands in flight harms nothing.
(The commands that stay on worker threads beside submitted writes, COMPARE AND WRITE among
them, meet libiscsi's conformance families in test_rbd_lu.py.)"""

from __future__ import annotations

import random
import re

import pytest

from tests.support.ceph import CephCluster, run_client
from tests.support.initiator import RawInitiator
from tests.support.rbd_lu import RBD_IQN, peak_in_flight, qemu_bench_4k, rbd_config
from tests.support.server import start_server
from tests.support.tools import run

pytestmark = pytest.mark.e2e
MiB = 1 << 20
SIZE = 64 * MiB
BLOCKS_4K = SIZE // 4096


@pytest.fixture(scope="module")
def aio_server(ceph_cluster: CephCluster, tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("rbd-aio"), rbd_config(ceph_cluster, "aio1", "64MiB"))
    yield server
    assert server.stop() == 0, server.log_text()
    assert "Traceback" not in server.log_text()


def test_one_session_has_32_and_more_in_flight_and_qemus_rbd_driver_reads_what_was_written(
        aio_server, ceph_cluster, tmp_path):
    url = aio_server.url(RBD_IQN)
    rbd_url = ceph_cluster.qemu_url("aio1")
    # Every 4 KiB block written once, 64 requests in flight on one session.
    qemu_bench_4k(url, depth=64, count=BLOCKS_4K, write=True, pattern=0xA5)
    expected = tmp_path / "a5.raw"
    expected.write_bytes(b"\xa5" * SIZE)
    run_client(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(expected), rbd_url], timeout=300)

    source = tmp_path / "random.raw"
    source.write_bytes(random.Random(32).randbytes(SIZE))
    run(["qemu-img", "convert", "-n", "-m", "16", "-W", "-f", "raw", "-O", "raw", str(source), url], timeout=300)
    qemu_bench_4k(url, depth=64, count=BLOCKS_4K)  # reads, 64 in flight
    run_client(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(source), rbd_url], timeout=300)
    run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(source), url], timeout=300)

    log = aio_server.log_text()
    assert peak_in_flight(log) >= 32, log
    assert not re.search(r"ERROR|Traceback", log), log


def test_a_session_dropped_with_commands_in_flight_harms_nothing(aio_server):
    dropped = RawInitiator(aio_server.port)
    dropped.login(digests=False, target=RBD_IQN)
    for n in range(64):  # 64 writes sent, none of their answers read: the socket then closes
        dropped.write10(0x100 + n, n * 8, bytes([n]) * 4096)
    dropped.close()

    again = RawInitiator(aio_server.port)
    again.login(digests=False, target=RBD_IQN, initiator="iqn.2026-11.test:again")
    data = random.Random(64).randbytes(64 * 1024)
    again.write10(1, 4096, data, fua=True)
    again.expect_good()
    again.synchronize_cache(2)
    assert again.read10(3, 4096, len(data)) == data
    again.close()
    assert aio_server.proc.poll() is None
    assert "Traceback" not in aio_server.log_text()

