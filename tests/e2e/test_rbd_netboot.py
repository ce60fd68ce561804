"""A lab whose golden image is on Ceph RBD (issue 19, acceptance 2): real Linux machines boot
over iSCSI from clones of the image's version snapshots, and persistence, reset_on_boot and an
image update behave as they do for VHD (tests/e2e/test_image_lifecycle.py):

- ws01, the maintenance client, boots a clone of version 1 and writes into it; commit makes it
  version 2 (a protected snapshot);
- ws02 (reset_on_boot) then boots a fresh clone of version 2: ws01's file, not its own;
- ws03 (persistent) keeps its clone of version 1 and what it wrote, across power cycles.

bootsrv runs in the lab's namespace; the session's cluster listens on the host's loopback, which
tests/support/netns_relay.py makes reachable there."""

from __future__ import annotations

import json

import pytest

from tests.support import rbd_images as cluster_io
from tests.support.cli import lab_admin
from tests.support.linux_boot import THREE_MACHINES, clean_boot_round
from tests.support.netboot import start_bootsrv
from tests.support.netns_relay import host_ports_in

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(1500)
def test_linux_clients_boot_clones_of_an_rbd_image(classroom_of_three, linux_golden, ceph_cluster, tmp_path):
    lab, _site = classroom_of_three
    pool = ceph_cluster.pool
    cluster_io.import_image(ceph_cluster, linux_golden, "netboot-golden", fmt="vpc")
    cluster_io.forget_client_disks(ceph_cluster, *THREE_MACHINES)
    with host_ports_in(lab.name, cluster_io.client_ports(ceph_cluster)):
        server_log = start_bootsrv(lab, tmp_path, cluster_io.lab_image_config(ceph_cluster, "netboot-golden"))
        for name in THREE_MACHINES:
            assert cluster_io.parent(ceph_cluster, f"bootsrv.client.{name}") == f"{pool}/netboot-golden@v1"

        assert "from its next power-on" in lab_admin(tmp_path, "image", "edit", "golden", "--client", "ws01")
        first = clean_boot_round(lab, tmp_path, "first", "ws01", "ws02", "ws03")
        assert all(console.files == ["sums"] for console in first.values()), {n: c.files for n, c in first.items()}
        assert "ws01 powering on into the edit of image golden" in server_log()

        # ws01 powered off without logging out: its session lingers until the NOP timeout.
        assert "current version 2" in lab_admin(tmp_path, "image", "commit", "golden", "--force")
        assert cluster_io.snapshots(ceph_cluster, "netboot-golden.v2") == {"v2": True}

        second = clean_boot_round(lab, tmp_path, "second", "ws02", "ws03")
        # ws02 starts again from a clone of version 2: the maintenance client's file, not its own.
        assert second["ws02"].files == ["after-dhcp-1", "data-1", "sums"] and second["ws02"].writers == ["ws01"]
        assert cluster_io.parent(ceph_cluster, "bootsrv.client.ws02") == f"{pool}/netboot-golden.v2@v2"
        # ws03 keeps its clone of version 1 and what it wrote in the first round.
        assert second["ws03"].writers == ["ws03"], second["ws03"].text[-3000:]
        assert cluster_io.parent(ceph_cluster, "bootsrv.client.ws03") == f"{pool}/netboot-golden@v1"
        listed = {row["name"]: row for row in json.loads(lab_admin(tmp_path, "client", "list", "--json"))}
        assert (listed["ws03"]["version"], listed["ws02"]["version"]) == ("1 (current: 2)", "2")
        image = json.loads(lab_admin(tmp_path, "status", "--json"))["images"][0]
        assert image["size"] == cluster_io.size(ceph_cluster, "netboot-golden") and image["current"] == 2, image
        assert image["behind"] == ["ws01", "ws03"], image  # ws01's own disk stays on 1 too
        # ws01's own clone was never written by its maintenance boot.
        assert cluster_io.read(ceph_cluster, "bootsrv.client.ws01", 0, 1 << 20) == \
            cluster_io.read(ceph_cluster, "netboot-golden@v1", 0, 1 << 20)
        log = server_log()
        assert "ws02 booted: its disk starts again from version 2 of image golden" in log
        assert "Traceback" not in log
