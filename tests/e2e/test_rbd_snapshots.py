"""Issue 19 acceptance 3: snapshots of a disk on Ceph RBD. Snapshots taken while an initiator
writes are clean cuts and the client sees no error; full and incremental exports (VHD, raw,
rbd export-diff) verify and hold the bytes `rbd export` reads from the same snapshot; rollback
restores the content; retention prunes; a kill -9 in the middle of a take is finished or undone
at the next start. Real peers throughout: a raw-wire initiator and qemu-img over iSCSI, the
`rbd` CLI (export, import-diff, du, clone), qemu-img -f vpc and libvhdi (pyvhdi)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.ceph import CephCluster
from tests.support.faults_summary import record
from tests.support.initiator import RAW_INITIATOR
from tests.support.rbd_lu import RBD_IQN
from tests.support.rbd_snapshots import (
    DISK, rbd, rbd_du, rbd_export, rbd_snapshot_config, rbd_snapshot_names, snapshot_name)
from tests.support.server import start_server
from tests.support.snapshots import (
    MiB, SequenceWriter, bootsrv_cli, check_cut, held_ms, pyvhdi_read, read_through_mount, rollback_over_a_client,
    snapshot, snapshots_while_writing, write_image)
from tests.support.tools import run

pytestmark = pytest.mark.e2e


def rows(server) -> list[dict]:
    return json.loads(snapshot(server, "list", "--json").stdout)


def exported(server, *args: str) -> Path:
    return Path(snapshot(server, "export", *args).stdout.split()[0])


def test_snapshots_under_continuous_writes_are_clean_cuts(run_server, ceph_cluster: CephCluster, tmp_path):
    server = run_server(rbd_snapshot_config(ceph_cluster, "snap-live", "128MiB"))
    writer = SequenceWriter(server.port, RBD_IQN, RAW_INITIATOR, slots=128 * MiB // SequenceWriter.SLOT)
    writer.start()
    assert writer.ready.wait(30)
    cuts = snapshots_while_writing(server, DISK, writer, 4, 0.3)
    assert not writer.errors, writer.errors  # the client saw no error while snapshots were taken
    assert len(writer.writes) > 100, "the writer hardly wrote: no load to cut through"
    names = {row["id"]: snapshot_name(row) for row in rows(server)}
    assert rbd_snapshot_names(ceph_cluster, "snap-live") == [names[snap_id] for snap_id, _, _ in cuts]
    for cut in cuts:  # `rbd export` of each RBD snapshot: a clean cut through the writes
        image = rbd_export(ceph_cluster, f"snap-live@{names[cut[0]]}", tmp_path / "snap.raw")
        check_cut(image, writer.writes, cut)
    # The read-only iSCSI mount opens the RBD snapshot: the same bytes as `rbd export`.
    assert read_through_mount(server, DISK, cuts[-1][0], tmp_path / "m.raw") == image
    pauses = held_ms(server)
    print(f"rbd: {len(writer.writes)} writes, writes held per snapshot (ms): {pauses}")


def test_exports_match_rbd_export_of_the_snapshot(run_server, ceph_cluster: CephCluster, tmp_path):
    image, size = "snap-exp", 64 * MiB
    server = run_server(rbd_snapshot_config(ceph_cluster, image))
    url = server.url(RBD_IQN)
    write_image(server, url, os.urandom(24 * MiB), tmp_path / "a.bin")
    snapshot(server, "create", DISK, "--label", "monday")
    write_image(server, url, os.urandom(3 * MiB), tmp_path / "b.bin")  # overwrites the start
    snapshot(server, "create", DISK, "--label", "tuesday")
    one, two = (row["id"] for row in rows(server))
    name_one, name_two = (snapshot_name(row) for row in rows(server))
    at_one = rbd_export(ceph_cluster, f"{image}@{name_one}", tmp_path / "one.raw")
    at_two = rbd_export(ceph_cluster, f"{image}@{name_two}", tmp_path / "two.raw")
    assert len(at_two) == size and at_one != at_two

    dest = tmp_path / "backup"
    full_one = exported(server, str(one), str(dest))
    incr_two = exported(server, str(two), str(dest), "--incremental-from", str(one))
    raw_two = exported(server, str(two), str(dest), "--format", "raw")
    diff_one = exported(server, str(one), str(dest), "--format", "rbd-diff")
    diff_two = exported(server, str(two), str(dest), "--format", "rbd-diff", "--incremental-from", str(one))
    for export in (full_one, incr_two, raw_two, diff_one, diff_two):
        assert "ok" in bootsrv_cli(tmp_path, "snapshot", "verify", str(export)).stdout
    # qemu-img reads the full VHD export as the snapshot; libvhdi follows the incremental chain.
    (tmp_path / "one.raw").write_bytes(at_one)
    run(["qemu-img", "compare", "-f", "vpc", "-F", "raw", str(full_one), str(tmp_path / "one.raw")])
    assert pyvhdi_read([full_one], size) == at_one
    assert pyvhdi_read([incr_two, full_one], size) == at_two
    assert incr_two.stat().st_size < 8 * MiB, "the incremental export holds more than the change"
    assert raw_two.read_bytes() == at_two
    # `rbd import-diff` of the two diffs rebuilds the disk in a fresh image, snapshot by snapshot.
    restored = "snap-exp-restored"
    rbd(ceph_cluster, "create", "--size", "1M", f"{ceph_cluster.pool}/{restored}")
    rbd(ceph_cluster, "import-diff", str(diff_one), f"{ceph_cluster.pool}/{restored}")
    assert rbd_export(ceph_cluster, f"{restored}@{name_one}", tmp_path / "r1.raw") == at_one
    rbd(ceph_cluster, "import-diff", str(diff_two), f"{ceph_cluster.pool}/{restored}")
    assert rbd_export(ceph_cluster, f"{restored}@{name_two}", tmp_path / "r2.raw") == at_two
    assert diff_two.stat().st_size < 4 * MiB, "the incremental diff holds more than the change"
    # A damaged base is found.
    with open(diff_one, "r+b") as handle:
        handle.truncate(diff_one.stat().st_size - 1)
    damaged = bootsrv_cli(tmp_path, "snapshot", "verify", str(diff_two), check=False)
    assert damaged.returncode == 1 and "sha256" in damaged.stdout, damaged.stdout

    # Usage per snapshot is `rbd du`'s; deleting the first leaves its data counted in the second.
    du = rbd_du(ceph_cluster, image)
    assert {snapshot_name(row): row["unique_bytes"] for row in rows(server)} == {
        name_one: du[name_one], name_two: du[name_two]}
    # A clone made of a snapshot keeps it: the delete says so, then works once the clone is gone.
    clone = f"{ceph_cluster.pool}/snap-exp-clone"
    rbd(ceph_cluster, "clone", f"{ceph_cluster.pool}/{image}@{name_one}", clone)
    refused = snapshot(server, "delete", str(one), check=False)
    assert refused.returncode == 1 and "snap-exp-clone" in refused.stderr and "clones" in refused.stderr, refused
    rbd(ceph_cluster, "rm", clone)
    snapshot(server, "delete", str(one))
    assert rbd_snapshot_names(ceph_cluster, image) == [name_two]
    (row,) = rows(server)
    assert row["unique_bytes"] == rbd_du(ceph_cluster, image)[name_two]
    assert rbd_export(ceph_cluster, f"{image}@{name_two}", tmp_path / "two.raw") == at_two


def test_rollback_restores_the_snapshot_and_keeps_later_ones(run_server, ceph_cluster: CephCluster, tmp_path):
    image = "snap-back"
    server = run_server(rbd_snapshot_config(ceph_cluster, image))
    url = server.url(RBD_IQN)
    states = [os.urandom(8 * MiB) for _ in range(3)]
    write_image(server, url, states[0], tmp_path / "0.bin")
    snapshot(server, "create", DISK)
    write_image(server, url, states[1], tmp_path / "1.bin")
    snapshot(server, "create", DISK)
    write_image(server, url, states[2], tmp_path / "2.bin")
    one, two = (row["id"] for row in rows(server))
    rollback_over_a_client(server, one, RBD_IQN)
    assert rbd_export(ceph_cluster, image, tmp_path / "live.raw")[:8 * MiB] == states[0]
    after = tmp_path / "after.raw"
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", url, str(after)])  # served again, rolled back
    assert after.read_bytes()[:8 * MiB] == states[0]
    # The disk takes writes again; the later snapshot is kept with its own content.
    write_image(server, url, states[2][:MiB], tmp_path / "3.bin")
    assert read_through_mount(server, DISK, two, tmp_path / "two.raw")[:8 * MiB] == states[1]
    assert [r["state"] for r in rows(server)] == ["ready", "ready"]


RETENTION = """
[[snapshots.schedule]]
name = "nightly"
disks = ["rbd*"]
cron = "0 3 1 1 *"
export = "incremental"
keep = { last = 2 }
"""


def test_schedule_takes_exports_and_prunes_an_rbd_disk(run_server, ceph_cluster: CephCluster, tmp_path):
    image = "snap-keep"
    server = run_server(rbd_snapshot_config(ceph_cluster, image, extra=RETENTION))
    for run_no in range(4):
        write_image(server, server.url(RBD_IQN), os.urandom(MiB) * 2, tmp_path / "w.bin")
        out = bootsrv_cli(tmp_path, "schedule", "run", "nightly", "-c", str(server.config)).stdout
        assert "ok" in out, out
    scheduled = [row for row in rows(server) if row["origin"] == "schedule:nightly"]
    assert len(scheduled) == 2, scheduled  # keep = { last = 2 }: the pruned ones are gone from the cluster too
    assert sorted(rbd_snapshot_names(ceph_cluster, image)) == sorted(snapshot_name(row) for row in scheduled)
    exports = sorted((tmp_path / "exports" / DISK).glob("*.vhd"))
    assert len(exports) == 4, exports
    latest = exports[-1]
    assert "ok" in bootsrv_cli(tmp_path, "snapshot", "verify", str(latest)).stdout
    newest = snapshot_name(scheduled[-1])
    chain = []  # the incremental chain, newest first, as its manifests link it
    current: Path | None = latest
    while current is not None:
        chain.append(current)
        base = json.loads(Path(f"{current}.manifest.json").read_text())["base"]
        current = (current.parent / base["file"]) if base else None
    assert len(chain) == 4
    assert pyvhdi_read(chain, 64 * MiB) == rbd_export(ceph_cluster, f"{image}@{newest}", tmp_path / "n.raw")


# crash point -> (the operation, what the start after it must leave: snapshots kept besides "a", the live state)
CRASH_POINTS = {
    "snapshot.create.flushed": (["create", DISK], 0, 1),  # before the RBD snapshot: undone
    "snapshot.create.switched": (["create", DISK], 1, 1),  # after it: finished
    "snapshot.delete.marked": (["delete", "1"], -1, 1),  # marked DELETING: removed at start
    "snapshot.rollback.closed": (["rollback", "1", "--force"], 0, 0),  # marked, image closed: rolled back at start
}


@pytest.mark.parametrize("point", list(CRASH_POINTS))
def test_kill_9_during_an_operation_is_finished_or_undone(ceph_cluster: CephCluster, tmp_path, point):
    record("kill -9", trials=1)
    image = f"snap-crash-{point.split('.', 1)[1].replace('.', '-')}"
    config = rbd_snapshot_config(ceph_cluster, image)
    states = [os.urandom(4 * MiB), os.urandom(2 * MiB)]
    views = [states[0], states[1] + states[0][len(states[1]):]]  # the first 4 MiB after each write
    operation, more, live_state = CRASH_POINTS[point]
    server = start_server(tmp_path, config)
    try:
        write_image(server, server.url(RBD_IQN), states[0], tmp_path / "a.bin")
        snapshot(server, "create", DISK, "--label", "a")
        write_image(server, server.url(RBD_IQN), states[1], tmp_path / "b.bin")
    finally:
        assert server.stop() == 0
    server = start_server(tmp_path, config, env={"BOOTSRV_CRASH_AT": point})
    result = snapshot(server, *operation, check=False)
    assert result.returncode != 0, "the server should have died at the crash point"
    server.proc.wait(30)
    assert server.proc.returncode == -9, server.log_text()
    server = start_server(tmp_path, config)
    try:
        kept = rows(server)
        assert all(row["state"] == "ready" for row in kept), kept
        assert len(kept) == 1 + more, kept
        # The catalog and the cluster agree: no snapshot left behind, none recorded that is not there.
        assert rbd_snapshot_names(ceph_cluster, image) == [snapshot_name(row) for row in kept]
        for row in kept:  # "a" holds the first state; one finished at the crash, the live one at the cut
            expected = views[0] if row["label"] == "a" else views[1]
            assert rbd_export(ceph_cluster, f"{image}@{snapshot_name(row)}", tmp_path / "s.raw")[:4 * MiB] == expected
        assert rbd_export(ceph_cluster, image, tmp_path / "live.raw")[:4 * MiB] == views[live_state]
        assert "recovery:" in server.log_text()
    finally:
        assert server.stop() == 0
