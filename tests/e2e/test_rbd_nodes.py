"""Two bootsrv nodes on one Ceph cluster (issue 19, acceptance 4): a client's disk is written
through one node at a time. While node A serves it, node B does not (a login to B is sent to
A); when A dies (kill -9) the client logs in through B and reads every flushed byte; a frozen A
that wakes up after B took over is fenced (blocklisted): its writes fail, a login to it is
refused, it exits, and the cluster keeps B's data. One of two nodes leads the schedules."""

from __future__ import annotations

import json

import pytest

from tests.support import rbd_images as cluster_io
from tests.support.ceph import CephCluster, run_client
from tests.support.cli import run_cli
from tests.support.netboot import wait_for
from tests.support.rbd_nodes import (cluster_holds, failed, freeze, kill, leader_lock, logins, qemu_io, start_node,
                                     thaw, two_nodes_one_client, url)

pytestmark = pytest.mark.e2e
MiB = 1 << 20


def status_of(node) -> dict:  # type: ignore[no-untyped-def]
    done = run_cli("status", "--json", "-c", node.config, cwd=node.workdir)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)["cluster"]


def lockers(cluster: CephCluster, image: str) -> str:
    """`rbd lock ls`: the Ceph CLI's own view of who holds the image."""
    return run_client(["rbd", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring", str(cluster.keyring),
                       "lock", "ls", f"{cluster.pool}/{image}"]).stdout


def test_killed_node_its_client_boots_through_the_other_with_every_flushed_byte(ceph_cluster, tmp_path):
    a, b, client = two_nodes_one_client(tmp_path, ceph_cluster, "nodes1", 0x5a, "4M")
    try:
        # While A serves the disk, B does not: a login to B is redirected to A's portal (the node
        # holding the lock, named in the image's metadata), and the client writes through A.
        sent = qemu_io(url(b), "write -P 0x66 4M 64k", "flush")
        assert not failed(sent), sent.stdout + sent.stderr
        assert f"sent to 127.0.0.1:{a.port}" in b.log_text() and logins(a) == 2 and logins(b) == 0
        assert "holds its exclusive lock" not in b.log_text(), b.log_text()
        assert "Locker" in lockers(ceph_cluster, "nodes1")
        shown = status_of(b)
        assert shown["node"] == "b" and shown["health"].startswith("HEALTH_"), shown
        assert [(d["name"], d["node"], d["here"]) for d in shown["disks"]] == [("rbd0", "a", False)], shown
        assert [(d["node"], d["here"]) for d in status_of(a)["disks"]] == [("a", True)]

        kill(a)  # kill -9: no logout, the lock stays with a dead client
        client.close()  # the client reboots

        # It logs in through B: B waits until A's watch has expired, then librbd blocklists A and
        # B takes the lock over. Every byte A acknowledged is there.
        back = qemu_io(url(b), "read -P 0x5a 0 4M", "read -P 0x66 4M 64k", "write -P 0x77 8M 64k", "flush")
        assert not failed(back), back.stdout + back.stderr + b.log_text()
        assert "taken over from node a" in b.log_text(), b.log_text()
        checked = cluster_holds(ceph_cluster, "nodes1", "read -P 0x5a 0 4M", "read -P 0x66 4M 64k",
                                "read -P 0x77 8M 64k")
        assert not failed(checked), checked.stdout + checked.stderr
    finally:
        client.close()
        if a.proc.poll() is None:
            kill(a)
        assert b.stop() == 0, b.log_text()
    assert "Traceback" not in b.log_text(), b.log_text()


def test_a_frozen_node_that_wakes_after_the_takeover_cannot_write(ceph_cluster, tmp_path):
    a, b, stale = two_nodes_one_client(tmp_path, ceph_cluster, "nodes2", 0x11, "1M")
    try:
        freeze(a)  # SIGSTOP: A stops answering, its session and its lock stay
        asked = stale.prompts() + 1
        stale.send("write -P 0x33 0 64k")  # waits in A's socket while A is frozen

        # The client gives up on A and boots through B, which takes the disk over and writes.
        moved = qemu_io(url(b), "read -P 0x11 0 1M", "write -P 0x22 0 64k", "flush")
        assert not failed(moved), moved.stdout + moved.stderr + b.log_text()
        assert "taken over from node a" in b.log_text(), b.log_text()

        thaw(a)  # the stale A runs on: the write it was handed fails (its Ceph client is blocklisted)
        answer = stale.answer(asked)
        assert "failed" in answer, answer + a.log_text()
        again = qemu_io(url(a), "write -P 0x44 0 64k")  # a new login to the stale A is refused too
        assert failed(again), again.stdout + again.stderr
        # A knows it was fenced: it says so and exits, for its supervisor to start it afresh.
        assert a.proc.wait(timeout=60) != 0
        assert "blocklisted this node's client" in a.log_text(), a.log_text()

        # The cluster has B's write, not A's.
        checked = cluster_holds(ceph_cluster, "nodes2", "read -P 0x22 0 64k", "read -P 0x11 64k 960k")
        assert not failed(checked), checked.stdout + checked.stderr
    finally:
        stale.close()
        kill(a)
        assert b.stop() == 0, b.log_text()
    assert "Traceback" not in b.log_text(), b.log_text()
    assert logins(b) == 1


EVERY_MINUTE = '[[snapshots.schedule]]\nname = "minutely"\ncron = "* * * * *"\ndisks = ["rbd0"]\n'
LEADS = "leads the RBD disks' snapshots"  # "this node (X) leads ..." or "another node leads ..."


def test_two_nodes_with_the_same_schedule_take_each_tick_once(ceph_cluster, tmp_path):
    """Both nodes' schedulers fire at the same minute; one node leads (a RADOS lock in the pool)
    and takes the RBD disk's run: one RBD snapshot per tick in all. A run by hand is a snapshot
    now, taken by the leader whichever node it is asked of."""
    nodes = {name: start_node(tmp_path / name, ceph_cluster, "nodes3", name, EVERY_MINUTE) for name in ("a", "b")}
    try:
        wait_for(lambda: all(node.log_text().count(LEADS) + node.log_text().count("taken already") >= 1
                             for node in nodes.values()), "both nodes' first scheduled run", 150)
        for node in nodes.values():
            run_cli("schedule", "run", "minutely", "-c", node.config, cwd=node.workdir, check=True)
        lock = leader_lock(ceph_cluster)  # the RADOS CLI's own view of the lead (given up at a clean stop)
    finally:
        for node in nodes.values():
            assert node.stop() == 0, node.log_text()
    took = {name: node.log_text().count(f"this node ({name}) leads") for name, node in nodes.items()}
    leader = max(took, key=took.get)
    other = "b" if leader == "a" else "a"
    assert took[other] == 0 and took[leader] >= 2, took  # a tick, and the run by hand
    assert "another node leads" in nodes[other].log_text(), nodes[other].log_text()
    assert f"bootsrv node {leader}" in lock, lock
    # Every run the leader took is one RBD snapshot on the cluster; the other node took none.
    taken = [name for name in cluster_io.snapshots(ceph_cluster, "nodes3") if name.startswith("bootsrv-snap-")]
    assert len(taken) == took[leader], (taken, took)
