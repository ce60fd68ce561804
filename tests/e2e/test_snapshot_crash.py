"""Issue 6 acceptance 6: the server is killed (SIGKILL, at a named step, the way
a power cut would stop it) in the middle of snapshot create, delete/merge,
export and rollback. After a restart no acknowledged write is lost, every VHD
checks clean, and the interrupted operation is finished or undone."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import SCRATCH_IQN, run, start_server
from tests.e2e.snaptools import MiB, bootsrv_cli, read_through_mount, snapshot, standalone_config, write_image

pytestmark = pytest.mark.e2e
SIZE = 64 * MiB


def disk_bytes(server, tmp_path) -> bytes:
    out = tmp_path / "live.raw"
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url(SCRATCH_IQN), str(out)])
    data = out.read_bytes()
    out.unlink()
    return data


def listing(server) -> list[dict]:
    return json.loads(snapshot(server, "list", "--json").stdout)


def all_vhds_check_clean(tmp_path) -> None:
    disks = tmp_path / "disks"
    for path in [disks / "scratch.vhd", *sorted((disks / "scratch.snapshots").glob("*"))]:
        assert path.suffix == ".vhd", f"stray file {path}"
        bootsrv_cli(tmp_path, "disk", "check", str(path))


def prepare(tmp_path) -> tuple[bytes, bytes, bytes]:
    """Three states: A (snapshot 1), B (snapshot 2), C (live). All acknowledged and flushed."""
    states = (os.urandom(20 * MiB), os.urandom(12 * MiB), os.urandom(6 * MiB))
    server = start_server(tmp_path, standalone_config())
    try:
        for index, data in enumerate(states):
            write_image(server, server.url(SCRATCH_IQN), data, tmp_path / "w.bin")
            if index < 2:
                snapshot(server, "create", "scratch", "--label", "abc"[index])
    finally:
        assert server.stop() == 0
    return states


def view(states: tuple[bytes, ...], upto: int) -> bytes:
    image = bytearray(SIZE)
    for data in states[:upto + 1]:
        image[:len(data)] = data
    return bytes(image)


OPERATIONS = {
    "snapshot.create.flushed": ["create", "scratch"],
    "snapshot.create.linked": ["create", "scratch"],
    "snapshot.create.child": ["create", "scratch"],
    "snapshot.create.switched": ["create", "scratch"],
    "snapshot.delete.marked": ["delete", "1"],
    "snapshot.delete.merging": ["delete", "1"],
    "snapshot.delete.merged": ["delete", "1"],
    "snapshot.delete.relinked": ["delete", "1"],
    "snapshot.export.written": ["export", "2", "backup", "--incremental-from", "1"],
    "snapshot.export.renamed": ["export", "2", "backup", "--incremental-from", "1"],
    "snapshot.rollback.child": ["rollback", "1", "--force"],
}


@pytest.mark.parametrize("point", list(OPERATIONS))
def test_kill_9_during_a_snapshot_operation(tmp_path, point):
    states = prepare(tmp_path)
    if OPERATIONS[point][0] == "export":
        server = start_server(tmp_path, standalone_config())
        snapshot(server, "export", "1", str(tmp_path / "backup"))
        assert server.stop() == 0
    server = start_server(tmp_path, standalone_config(), env={"BOOTSRV_CRASH_AT": point})
    result = snapshot(server, *OPERATIONS[point], check=False)
    assert result.returncode != 0, "the server should have died at the crash point"
    server.proc.wait(30)
    assert server.proc.returncode == -9, server.log_text()

    server = start_server(tmp_path, standalone_config())
    try:
        rows = listing(server)
        assert all(row["state"] == "ready" for row in rows), rows
        live = disk_bytes(server, tmp_path)
        kind = OPERATIONS[point][0]
        if kind == "rollback":
            assert live in (view(states, 2), view(states, 0)), "rollback neither done nor undone"
        else:
            assert live == view(states, 2), "acknowledged writes lost"
        by_label = {row["label"]: row["id"] for row in rows}
        if kind == "delete":
            assert "a" not in by_label, "an interrupted delete is finished at start"
        else:
            assert read_through_mount(server, "scratch", by_label["a"], tmp_path / "a.raw") == view(states, 0)
        assert read_through_mount(server, "scratch", by_label["b"], tmp_path / "b.raw") == view(states, 1)
        if kind == "create":
            extra = [row for row in rows if row["label"] not in ("a", "b")]
            assert len(extra) == (1 if point.endswith("switched") else 0), rows  # finished after the switch only
            for row in extra:  # finished: it holds the live content at the cut
                assert read_through_mount(server, "scratch", row["id"], tmp_path / "c.raw") == view(states, 2)
        if kind == "export":
            backup = tmp_path / "backup"
            assert not list(backup.glob("*.partial")), list(backup.iterdir())
            assert len(list(backup.glob("*.vhd"))) == 1, "only the completed full export remains"
            assert len(list(backup.glob("*.manifest.json"))) == 1, list(backup.iterdir())
            again = snapshot(server, "export", "2", str(backup), "--incremental-from", "1").stdout.split()[0]
            assert "ok" in bootsrv_cli(tmp_path, "snapshot", "verify", again).stdout
    finally:
        assert server.stop() == 0
    assert "recovery:" in server.log_text()  # the start said what it finished or undid
    all_vhds_check_clean(tmp_path)
