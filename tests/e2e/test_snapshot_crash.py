"""Issue 6 acceptance 6: the server is killed (SIGKILL, at a named step, the way
a power cut would stop it) in the middle of snapshot create, delete/merge,
export and rollback. After a restart no acknowledged write is lost, every VHD
checks clean, and the interrupted operation is finished or undone."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.support.faults_summary import record
from tests.support.scratch import SCRATCH_IQN
from tests.support.server import start_server
from tests.support.snapshots import (
    CLIENT, CLIENT_INITIATOR, CLIENT_IQN, MiB, bootsrv_cli, client_config, make_golden, read_through_mount, snapshot,
    standalone_config)
from tests.support.tools import run

pytestmark = pytest.mark.e2e
SIZE = 64 * MiB


class Disk:
    """A standalone VHD disk, or a client's differencing disk over a golden image
    (reached as the client: its initiator name is the only one its target admits)."""

    def __init__(self, kind: str, workdir) -> None:
        self.kind, self.workdir = kind, workdir
        if kind == "client":
            self.golden_sha256 = hashlib.sha256(make_golden(workdir).read_bytes()).hexdigest()
            self.name, self.iqn, self.initiator = CLIENT, CLIENT_IQN, CLIENT_INITIATOR
            self.file = workdir / "state" / "clients" / f"{CLIENT}.vhd"
        else:
            self.name, self.iqn, self.initiator = "scratch", SCRATCH_IQN, "iqn.2008-11.org.linux-kvm"
            self.file = workdir / "disks" / "scratch.vhd"

    def config(self) -> str:
        return client_config() if self.kind == "client" else standalone_config()

    def opts(self, server) -> str:
        return (f"driver=iscsi,transport=tcp,portal=127.0.0.1:{server.port},target={self.iqn},lun=0,"
                f"initiator-name={self.initiator}")

    def write(self, server, data: bytes) -> None:
        source = self.workdir / "w.bin"
        source.write_bytes(data)
        run(["qemu-img", "convert", "-n", "-f", "raw", str(source), "--target-image-opts", self.opts(server)])
        source.unlink()

    def read(self, server) -> bytes:
        out = self.workdir / "live.raw"
        run(["qemu-img", "convert", "--image-opts", self.opts(server), "-O", "raw", str(out)])
        data = out.read_bytes()
        out.unlink()
        return data


def listing(server) -> list[dict]:
    return json.loads(snapshot(server, "list", "--json").stdout)


def all_vhds_check_clean(disk: Disk) -> None:
    for path in [disk.file, *sorted((disk.file.parent / f"{disk.file.stem}.snapshots").glob("*"))]:
        assert path.suffix == ".vhd", f"stray file {path}"
        bootsrv_cli(disk.workdir, "disk", "check", str(path))


def prepare(disk: Disk) -> tuple[bytes, bytes, bytes]:
    """Three states: A (snapshot 1), B (snapshot 2), C (live). All acknowledged and flushed."""
    states = (os.urandom(20 * MiB), os.urandom(12 * MiB), os.urandom(6 * MiB))
    server = start_server(disk.workdir, disk.config())
    try:
        for index, data in enumerate(states):
            disk.write(server, data)
            if index < 2:
                snapshot(server, "create", disk.name, "--label", "abc"[index])
    finally:
        assert server.stop() == 0
    return states


def view(states: tuple[bytes, ...], upto: int) -> bytes:
    image = bytearray(SIZE)
    for data in states[:upto + 1]:
        image[:len(data)] = data
    return bytes(image)


OPERATIONS = {
    "snapshot.create.recorded": ["create", "DISK"],  # inside the catalog's transaction: nothing to recover
    "snapshot.create.flushed": ["create", "DISK"],
    "snapshot.create.linked": ["create", "DISK"],
    "snapshot.create.child": ["create", "DISK"],
    "snapshot.create.switched": ["create", "DISK"],
    "snapshot.delete.marked": ["delete", "1"],
    "snapshot.delete.merging": ["delete", "1"],
    "snapshot.delete.merged": ["delete", "1"],
    "snapshot.delete.relinked": ["delete", "1"],
    "snapshot.delete.unlinked": ["delete", "1"],
    "snapshot.export.written": ["export", "2", "backup", "--incremental-from", "1"],
    "snapshot.export.renamed": ["export", "2", "backup", "--incremental-from", "1"],
    "snapshot.rollback.child": ["rollback", "1", "--force"],
}


@pytest.mark.parametrize("kind", ["standalone", "client"])
@pytest.mark.parametrize("point", list(OPERATIONS))
def test_kill_9_during_a_snapshot_operation(tmp_path, point, kind):
    record("kill -9", trials=1)
    disk = Disk(kind, tmp_path)
    states = prepare(disk)
    if OPERATIONS[point][0] == "export":
        server = start_server(tmp_path, disk.config())
        snapshot(server, "export", "1", str(tmp_path / "backup"))
        assert server.stop() == 0
    server = start_server(tmp_path, disk.config(), env={"BOOTSRV_CRASH_AT": point})
    result = snapshot(server, *[disk.name if arg == "DISK" else arg for arg in OPERATIONS[point]], check=False)
    assert result.returncode != 0, "the server should have died at the crash point"
    server.proc.wait(30)
    assert server.proc.returncode == -9, server.log_text()

    server = start_server(tmp_path, disk.config())
    try:
        rows = listing(server)
        assert all(row["state"] == "ready" for row in rows), rows
        live = disk.read(server)
        kind = OPERATIONS[point][0]
        if kind == "rollback":
            assert live in (view(states, 2), view(states, 0)), "rollback neither done nor undone"
        else:
            assert live == view(states, 2), "acknowledged writes lost"
        by_label = {row["label"]: row["id"] for row in rows}
        if kind == "delete":
            assert "a" not in by_label, "an interrupted delete is finished at start"
        else:
            assert read_through_mount(server, disk.name, by_label["a"], tmp_path / "a.raw") == view(states, 0)
        assert read_through_mount(server, disk.name, by_label["b"], tmp_path / "b.raw") == view(states, 1)
        if kind == "create":
            extra = [row for row in rows if row["label"] not in ("a", "b")]
            assert len(extra) == (1 if point.endswith("switched") else 0), rows  # finished after the switch only
            for row in extra:  # finished: it holds the live content at the cut
                assert read_through_mount(server, disk.name, row["id"], tmp_path / "c.raw") == view(states, 2)
        if kind == "export":
            backup = tmp_path / "backup"
            assert not list(backup.glob("*.partial")), list(backup.iterdir())
            assert len(list(backup.glob("*.vhd"))) == 1, "only the completed full export remains"
            assert len(list(backup.glob("*.manifest.json"))) == 1, list(backup.iterdir())
            again = snapshot(server, "export", "2", str(backup), "--incremental-from", "1").stdout.split()[0]
            assert "ok" in bootsrv_cli(tmp_path, "snapshot", "verify", again).stdout
    finally:
        assert server.stop() == 0
    if point != "snapshot.create.recorded":
        assert "recovery:" in server.log_text()  # the start said what it finished or undid
    all_vhds_check_clean(disk)
    if kind == "client":
        assert hashlib.sha256((tmp_path / "golden.vhd").read_bytes()).hexdigest() == disk.golden_sha256
