"""Issue 19, acceptance 4 with a real operating system: a Linux machine boots its RBD clone
through node A and writes its files; A is killed (SIGKILL, the machine's session still open on
it, so A holds the disk's exclusive lock); node B, started in A's place (the same portal, as a
standby or a floating address would have it), takes the lock over once A's watch has expired
(librbd blocklists A's Ceph client first), and the machine boots through B with every file it
wrote. The stale-writer half (a frozen node that wakes cannot write) is tests/e2e/test_rbd_nodes.py."""

from __future__ import annotations

import pytest

from tests.support import rbd_images as cluster_io
from tests.support.ceph import CephCluster
from tests.support.linux_boot import THREE_MACHINES, clean_boot_round
from tests.support.netboot import run_bootsrv, wait_for
from tests.support.netns_relay import host_ports_in
from tests.support.rbd_images import lab_image_config

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(1500)
def test_a_client_boots_through_node_b_after_node_a_dies(classroom_of_three, linux_golden,
                                                         ceph_cluster: CephCluster, tmp_path):
    lab, _site = classroom_of_three
    cluster_io.import_image(ceph_cluster, linux_golden, "failover-golden", fmt="vpc")
    cluster_io.forget_client_disks(ceph_cluster, *THREE_MACHINES)
    disk = "bootsrv.client.ws03"
    for node in ("a", "b"):
        (tmp_path / node).mkdir()
    with host_ports_in(lab.name, cluster_io.client_ports(ceph_cluster)):
        node_a, log_a = run_bootsrv(lab, tmp_path / "a", lab_image_config(ceph_cluster, "failover-golden", "a"))
        first = clean_boot_round(lab, tmp_path, "through-a", "ws03")
        assert first["ws03"].files == ["sums"], first["ws03"].text[-3000:]
        assert f"{disk}: this node (a) holds its exclusive lock" in log_a()
        # Powered off without logging out: A still serves the disk when it dies.
        node_a.kill()
        node_a.wait(30)
        wait_for(lambda: cluster_io.watchers(ceph_cluster, disk) == 0, "node a's watch on the disk to expire", 120)

        node_b, log_b = run_bootsrv(lab, tmp_path / "b", lab_image_config(ceph_cluster, "failover-golden", "b"))
        try:
            second = clean_boot_round(lab, tmp_path, "through-b", "ws03")
            # Every file the machine wrote through A, read through B.
            assert second["ws03"].files == ["after-dhcp-1", "data-1", "sums"], second["ws03"].text[-3000:]
            assert second["ws03"].writers == ["ws03"]
            log = log_b()
            assert f"{disk} taken over from node a" in log and "blocklisted" in log, log[-3000:]
            assert "Traceback" not in log
        finally:
            node_b.terminate()
            node_b.wait(60)
