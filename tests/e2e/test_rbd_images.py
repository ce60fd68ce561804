"""Golden images on Ceph RBD (issue 19): each version is a protected RBD snapshot, each client's
disk a copy-on-write clone of its version's snapshot, and the lifecycle (edit, commit, revert,
extend, flatten, prune, client reset) does to the cluster what it does to VHD files. Checked on
the cluster itself, through librbd and the rbd tool, on an opened appliance."""

from __future__ import annotations

import random

import pytest

from target.stores.vhd import open_vhd
from target.stores.vhd.create import create_dynamic

from tests.support import rbd_images as cluster_io
from tests.support.appliance import opened_appliance
from tests.support.ceph import CephCluster
from tests.support.cli import run_cli

pytestmark = pytest.mark.e2e
MiB = 1 << 20


@pytest.fixture
def rbd_lab(ceph_cluster: CephCluster, tmp_path, request):
    image = f"golden-{request.node.name[-24:].replace('[', '-').replace(']', '')}"
    cluster_io.new_image(ceph_cluster, image, 32 * MiB)
    cluster_io.write(ceph_cluster, image, 0, b"\x11" * 4096)  # version 1's content
    cluster_io.forget_client_disks(ceph_cluster, "ws01", "ws02")
    text = cluster_io.rbd_image_config(ceph_cluster, image, {"ws01": "52:54:00:12:34:56", "ws02": "52:54:00:12:34:57"},
                                       reset=("ws02",))
    with opened_appliance(tmp_path, text) as app:
        yield app, image


def test_versions_are_protected_snapshots_and_clients_are_clones(rbd_lab, ceph_cluster: CephCluster):
    app, image = rbd_lab
    images, pool = app.images, ceph_cluster.pool
    assert cluster_io.snapshots(ceph_cluster, image) == {"v1": True}
    for name in ("ws01", "ws02"):
        assert cluster_io.parent(ceph_cluster, f"bootsrv.client.{name}") == f"{pool}/{image}@v1"
        assert images.version_of(app.clients[name]) == 1
    assert cluster_io.read(ceph_cluster, "bootsrv.client.ws01", 0, 4096) == b"\x11" * 4096

    images.edit("golden", "ws01")
    edit = images.record("golden").edit
    assert edit.file == f"rbd:{pool}/{image}.v2"
    assert cluster_io.parent(ceph_cluster, f"{image}.v2") == f"{pool}/{image}@v1"
    cluster_io.write(ceph_cluster, f"{image}.v2", 8192, b"\x22" * 4096)  # what the maintenance client wrote
    record = images.commit("golden", label="term 2")
    assert record["current"] == 2 and record["edit"] is None
    assert record["versions"][1]["file"] == f"rbd:{pool}/{image}.v2@v2" and record["versions"][1]["bytes"] > 0
    assert cluster_io.snapshots(ceph_cluster, f"{image}.v2") == {"v2": True}
    assert cluster_io.read(ceph_cluster, f"{image}.v2@v2", 0, 12288) == b"\x11" * 4096 + bytes(4096) + b"\x22" * 4096

    # ws01 (persistent) stays on version 1 with its own writes; a reset brings it onto 2.
    cluster_io.write(ceph_cluster, "bootsrv.client.ws01", 16384, b"\x33" * 512)
    assert images.version_of(app.clients["ws01"]) == 1
    assert images.reset_client("ws01")["version"] == 2
    assert cluster_io.parent(ceph_cluster, "bootsrv.client.ws01") == f"{pool}/{image}.v2@v2"
    assert images.version_of(app.clients["ws01"]) == 2
    assert cluster_io.read(ceph_cluster, "bootsrv.client.ws01", 8192, 12288) == b"\x22" * 4096 + bytes(8192)
    # ... and the served store reads the new clone.
    assert bytes(app.stores["client:ws01"].read(8192, 4096)) == b"\x22" * 4096

    assert images.revert("golden", 1)["current"] == 1
    assert images.current_file("golden").as_posix() == f"rbd:{pool}/{image}@v1"
    assert images.prune("golden")["pruned"] == []  # ws01 is on 2
    images.reset_client("ws01")
    assert images.prune("golden")["pruned"] == [2]
    assert f"{image}.v2" not in cluster_io.images(ceph_cluster)
    assert cluster_io.snapshots(ceph_cluster, image) == {"v1": True}


def test_extend_flatten_discard_and_recovery_of_strays(rbd_lab, ceph_cluster: CephCluster):
    app, image = rbd_lab
    images, pool = app.images, ceph_cluster.pool
    images.current_file("golden")
    record = images.extend("golden", 48 * MiB)
    assert record["current"] == 2
    assert cluster_io.size(ceph_cluster, f"{image}.v2@v2") == 48 * MiB
    record = images.flatten("golden")
    assert record["current"] == 3 and record["versions"][-1]["parent"] is None
    assert cluster_io.parent(ceph_cluster, f"{image}.v3") is None  # flattened: no clone of anything
    assert cluster_io.read(ceph_cluster, f"{image}.v3@v3", 0, 4096) == b"\x11" * 4096

    images.edit("golden", "ws01")
    assert images.record("golden").edit.file == f"rbd:{pool}/{image}.v4"
    images.discard("golden")
    assert f"{image}.v4" not in cluster_io.images(ceph_cluster)

    # A head nobody records (an edit killed before its record was written) is removed at start.
    cluster_io.rbd_cli(ceph_cluster, "clone", f"{pool}/{image}.v3@v3", f"{pool}/{image}.v9")
    assert any("removed rbd:" in line and f"{image}.v9" in line for line in images.recover())
    assert f"{image}.v9" not in cluster_io.images(ceph_cluster)



def test_client_remove_deletes_its_clone(ceph_cluster: CephCluster, tmp_path):
    """`client remove --delete-disk` (no server running) deletes the client's clone in the pool."""
    cluster_io.new_image(ceph_cluster, "golden-remove", 8 * MiB)
    cluster_io.forget_client_disks(ceph_cluster, "ws07")
    text = cluster_io.rbd_image_config(ceph_cluster, "golden-remove", {"ws07": "52:54:00:12:34:77"})
    with opened_appliance(tmp_path, text):
        assert "bootsrv.client.ws07" in cluster_io.images(ceph_cluster)
    result = run_cli("client", "remove", "ws07", "--delete-disk", "-c", tmp_path / "c.toml", cwd=tmp_path)
    assert result.returncode == 0 and f"deleted rbd:{ceph_cluster.pool}/bootsrv.client.ws07" in result.stdout, result
    assert "bootsrv.client.ws07" not in cluster_io.images(ceph_cluster)
    assert "ws07" not in (tmp_path / "c.toml").read_text()


def test_image_import_and_create_into_the_cluster(ceph_cluster: CephCluster, tmp_path):
    """An admin's installed disk (a VHD here) goes into Ceph with `image import --path rbd:...`:
    the cluster then holds its bytes, and the configuration names the RBD image."""
    source = tmp_path / "installed.vhd"
    data = random.Random(7).randbytes(3 * MiB) + bytes(2 * MiB) + b"\x5a" * MiB
    create_dynamic(source, 8 * MiB)
    store = open_vhd(source)
    store.write(0, data)
    store.close()
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\nstate_dir = "state"\n{cluster_io.ceph_section(ceph_cluster)}')
    pool = ceph_cluster.pool
    imported = run_cli("image", "import", "lab", str(source), "--path", f"rbd:{pool}/imported", "-c", config,
                       cwd=tmp_path)
    assert imported.returncode == 0, imported
    assert cluster_io.read(ceph_cluster, "imported", 0, len(data)) == data
    assert cluster_io.size(ceph_cluster, "imported") == 8 * MiB
    assert "imported.partial" not in cluster_io.images(ceph_cluster)
    made = run_cli("image", "create", "empty", "--size", "16MiB", "--path", f"rbd:{pool}/made", "-c", config,
                   cwd=tmp_path)
    assert made.returncode == 0 and cluster_io.size(ceph_cluster, "made") == 16 * MiB, made
    text = config.read_text()
    assert f'path = "rbd:{pool}/imported"' in text and f'path = "rbd:{pool}/made"' in text, text
    again = run_cli("image", "create", "other", "--size", "16MiB", "--path", f"rbd:{pool}/made", "-c", config,
                    cwd=tmp_path)
    assert again.returncode != 0 and "already exists" in again.stderr, again
