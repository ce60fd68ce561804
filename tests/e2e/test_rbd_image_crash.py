"""Issue 19: the golden-image steps on RBD killed (SIGKILL at a named step, as a power cut
would stop the node) and the node started again. Every recorded version is a protected snapshot
that holds what it held, the record names no missing head and leaves no stray one, and the
interrupted step is either done or not done: a commit killed after its snapshot commits again,
one killed after its record is committed."""

from __future__ import annotations

import json

import pytest

from tests.support import rbd_images as cluster_io
from tests.support.ceph import CephCluster
from tests.support.cli import run_cli
from tests.support.faults_summary import record
from tests.support.netboot import wait_for
from tests.support.server import Server, start_server

pytestmark = pytest.mark.e2e
MiB = 1 << 20
V1, EDIT, OWN = b"\x11" * 4096, b"\x22" * 4096, b"\x44" * 4096  # at 0, 8 KiB and 16 KiB


def edited(server: Server, cluster: CephCluster, image: str) -> None:
    admin(server, "image", "edit", "golden", "--client", "ws01")
    cluster_io.write(cluster, f"{image}.v2", 8192, EDIT)  # what the maintenance client wrote


def committed(server: Server, cluster: CephCluster, image: str) -> None:
    edited(server, cluster, image)
    admin(server, "image", "commit", "golden", "--force")
    cluster_io.write(cluster, "bootsrv.client.ws01", 16384, OWN)  # ws01's own disk, on version 1


def reverted(server: Server, cluster: CephCluster, image: str) -> None:
    committed(server, cluster, image)
    admin(server, "image", "revert", "golden", "--to", "1")


TRIALS = {
    "image.edit.created": (None, ["image", "edit", "golden", "--client", "ws01"]),
    "image.commit.linked": (edited, ["image", "commit", "golden", "--force"]),
    "image.commit.recorded": (edited, ["image", "commit", "golden", "--force"]),
    "image.prune.recorded": (reverted, ["image", "prune", "golden"]),
    "client.reset.child": (committed, ["client", "reset", "ws01", "--force"]),
    "image.extend.created": (committed, ["image", "extend", "golden", "--size", "48MiB"]),
    "image.flatten.written": (committed, ["image", "flatten", "golden"]),
}


def admin(server: Server, *args: str, check: bool = True):
    return run_cli(*args, "-c", server.config, cwd=server.workdir, check=check)


def versions(server: Server) -> dict:
    return json.loads(admin(server, "image", "versions", "golden", "--json").stdout)[0]


def assert_versions_intact(server: Server, cluster: CephCluster, image: str) -> dict:
    state = versions(server)
    pool = cluster.pool
    for version in state["versions"]:
        spec = version["file"].removeprefix(f"rbd:{pool}/")
        head, snap = spec.split("@")
        assert cluster_io.snapshots(cluster, head).get(snap) is True, f"version {version['number']} is not protected"
        assert cluster_io.read(cluster, spec, 0, 4096) == V1, f"version {version['number']} changed"
        if version["number"] > 1 and version["parent"] is not None:
            assert cluster_io.read(cluster, spec, 8192, 4096) == EDIT, f"version {version['number']} changed"
    heads = {f"{image}.v{v['number']}" for v in state["versions"] if v["number"] > 1}
    if state["edit"]:
        heads.add(state["edit"]["file"].removeprefix(f"rbd:{pool}/"))
    found = {name for name in cluster_io.images(cluster) if name.startswith(f"{image}.v")}
    assert found == heads, f"stray or missing heads: {sorted(found ^ heads)}"
    return state


@pytest.mark.parametrize("point", list(TRIALS))
def test_kill_9_during_an_rbd_image_step(ceph_cluster: CephCluster, tmp_path, point):
    record("kill -9", trials=1)
    image = "crash-" + point.replace(".", "-")
    cluster_io.new_image(ceph_cluster, image, 32 * MiB)
    cluster_io.write(ceph_cluster, image, 0, V1)
    cluster_io.forget_client_disks(ceph_cluster, "ws01", "ws02")
    text = cluster_io.rbd_image_config(ceph_cluster, image, {"ws01": "52:54:00:12:34:56", "ws02": "52:54:00:12:34:57"},
                                       portal="127.0.0.1:@PORT@")
    setup, command = TRIALS[point]
    server = start_server(tmp_path, text)
    try:
        if setup is not None:
            setup(server, ceph_cluster, image)
    finally:
        assert server.stop() == 0, server.log_text()
    server = start_server(tmp_path, text, env={"BOOTSRV_CRASH_AT": point})
    assert admin(server, *command, check=False).returncode != 0, "the server should have died at the crash point"
    server.proc.wait(30)
    assert server.proc.returncode == -9, server.log_text()
    # The killed node's watches stay until they time out; a new node works beside them, but
    # removing a watched image (a reset) waits for them.
    wait_for(lambda: not any(cluster_io.watchers(ceph_cluster, name) for name in cluster_io.images(ceph_cluster)
                             if name.startswith((image, "bootsrv.client."))), "the killed node's watches", 120)

    server = start_server(tmp_path, text)
    try:
        state = assert_versions_intact(server, ceph_cluster, image)
        current = state["current"]
        if point == "image.edit.created":
            assert state["edit"] is None and current == 1
        elif point == "image.commit.linked":  # not committed: the edit goes on, with what ws01 wrote
            assert state["edit"] is not None and current == 1
            admin(server, "image", "commit", "golden", "--force")
            state = assert_versions_intact(server, ceph_cluster, image)
            current = state["current"]
            assert current == 2
        elif point == "image.commit.recorded":
            assert state["edit"] is None and current == 2
        elif point == "image.prune.recorded":
            assert [v["number"] for v in state["versions"]] == [1]
        elif point in ("image.extend.created", "image.flatten.written"):  # killed before the record: not done
            assert current == 2 and [v["number"] for v in state["versions"]] == [1, 2]
        else:  # client reset: done (a clone of version 2) or not done (version 1 and its own data)
            parent = cluster_io.parent(ceph_cluster, "bootsrv.client.ws01")
            own = cluster_io.read(ceph_cluster, "bootsrv.client.ws01", 16384, 4096)
            assert (parent, own) in ((f"{ceph_cluster.pool}/{image}@v1", OWN),
                                     (f"{ceph_cluster.pool}/{image}.v2@v2", bytes(4096))), parent
        # A classroom machine's new disk starts from the current version.
        admin(server, "client", "reset", "ws02", "--force")
        assert cluster_io.read(ceph_cluster, "bootsrv.client.ws02", 8192, 4096) == (EDIT if current == 2 else bytes(4096))
        assert "Traceback" not in server.log_text()
    finally:
        assert server.stop() == 0, server.log_text()
