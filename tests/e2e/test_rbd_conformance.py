"""iscsi-test-cu --dataloss on an RBD LU passes what it passes on a raw LU, or each difference
is explained (issue 19, acceptance 1).

The whole suite runs once on each (a raw 1 GiB scratch LU and a 1 GiB RBD image, each behind
its own server, at the same time) and the outcomes are compared test by test: nothing may do
worse on RBD (a skip where raw ran, a failure where raw passed) unless
iscsi_test_cu_rbd_differences.txt explains it, and no RBD failure may be outside that list and
the raw LU's accepted failures. The RBD image's own settings make librbd's discard skip partial
objects, so the UNMAP tests (which read zeros back: LBPRZ) also show that the store's zeroing
holds whatever a pool or image sets.

Then what a client sees when the OSDs stop answering for a few seconds: its writes wait, and
finish intact once the OSD is back.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.support.ceph import CephCluster, clean_env, run_client
from tests.support.ceph_faults import osd_frozen
from tests.support.conformance import RBD_DIFFERENCES, differences, listed, run_suites
from tests.support.rbd_conformance import coarse_discard_image
from tests.support.rbd_lu import RBD_IQN, rbd_config
from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.server import start_server
from tests.support.tools import accepted_failures

pytestmark = pytest.mark.e2e
IMAGE = "conformance"
MiB = 1 << 20
# Long enough that the write is surely waiting on the OSD, short enough for a test
FROZEN_FOR = 5


def test_rbd_lu_does_in_the_suite_what_a_raw_lu_does(ceph_cluster: CephCluster, run_server, tmp_path_factory):
    coarse_discard_image(ceph_cluster, IMAGE, "1G")
    raw = run_server(scratch_config("1GiB"))
    rbd = start_server(tmp_path_factory.mktemp("rbd-conformance"), rbd_config(ceph_cluster, IMAGE, "1GiB"))
    try:
        runs = run_suites({"raw": raw.url(SCRATCH_IQN), "rbd": rbd.url(RBD_IQN)})
    finally:
        code = rbd.stop()
    assert code == 0 and "Traceback" not in rbd.log_text(), rbd.log_text()
    on_raw, on_rbd = runs["raw"], runs["rbd"]
    for run in (on_raw, on_rbd):
        assert run.total >= 200 and run.ran == run.total == len(run.outcomes), run.tail()
    explained, accepted = listed(RBD_DIFFERENCES), accepted_failures()

    worse = {test: seen for test, seen in differences(on_raw, on_rbd).items() if test not in explained}
    assert not worse, f"worse on RBD than on raw (raw, rbd): {worse}\n{on_rbd.tail()}"
    unexplained = on_rbd.named("failed") - accepted - explained
    assert not unexplained, f"RBD failures explained nowhere: {sorted(unexplained)}\n{on_rbd.tail()}"
    assert on_raw.named("failed") <= accepted, on_raw.tail()
    print(f"iscsi-test-cu -t ALL: raw {len(on_raw.named('passed'))} passed, {len(on_raw.named('skipped'))} skipped, "
          f"failed {sorted(on_raw.named('failed'))}; rbd {len(on_rbd.named('passed'))} passed, "
          f"{len(on_rbd.named('skipped'))} skipped, failed {sorted(on_rbd.named('failed'))}")


def test_a_write_waits_for_a_frozen_osd_and_lands_intact(ceph_cluster: CephCluster, tmp_path_factory):
    work = tmp_path_factory.mktemp("osd-frozen")
    source = work / "in.raw"
    source.write_bytes(os.urandom(32 * MiB))
    server = start_server(work, rbd_config(ceph_cluster, "frozen", "32MiB"))
    writer: subprocess.Popen | None = None
    try:
        with osd_frozen(ceph_cluster):
            # started while the OSD is frozen, so the write cannot finish before it is back
            writer = subprocess.Popen(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(source),
                                       server.url(RBD_IQN)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env=clean_env())
            time.sleep(FROZEN_FOR)
            assert writer.poll() is None, writer.communicate()[0]  # waiting, not failed
        out = writer.communicate(timeout=300)[0]
        assert writer.returncode == 0, out
        run_client(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(source), ceph_cluster.qemu_url("frozen")])
    finally:
        if writer is not None and writer.poll() is None:
            writer.kill()
            writer.wait()
        code = server.stop()
    assert code == 0 and "Traceback" not in server.log_text(), server.log_text()
