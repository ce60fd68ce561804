"""Helpers for the snapshot tests: configurations with a standalone VHD disk or a
client's differencing disk, the CLI as admins run it, and reading a snapshot
through its read-only iSCSI mount with qemu-img."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from bootsrv.config import DEFAULT_BASE_IQN
from tests.support.initiator import RAW_INITIATOR, RawInitiator, request_bhs
from tests.support.cli import run_cli
from tests.support.scratch import scratch_config
from tests.support.server import Server
from tests.support.tools import require_tool, run

MiB = 1 << 20
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-libvhdi's pyvhdi lives there
QEMU_INITIATOR = "iqn.2008-11.org.linux-kvm"  # qemu-img's default initiator name: our "backup host"
CLIENT = "pc1"
CLIENT_IQN = f"{DEFAULT_BASE_IQN}:{CLIENT}"
CLIENT_INITIATOR = f"{DEFAULT_BASE_IQN}:initiator.{CLIENT}"

SNAPSHOTS_SECTION = f"""
[snapshots]
export_dir = "exports"
initiators = ["{QEMU_INITIATOR}", "{RAW_INITIATOR}"]
"""


def standalone_config(size: str = "64MiB", extra: str = "") -> str:
    """The scratch disk of the other e2e tests, as a VHD (snapshots need one)."""
    return scratch_config(size).replace("disks/scratch.img", "disks/scratch.vhd") + SNAPSHOTS_SECTION + extra


def client_config(extra: str = "") -> str:
    """A diskless client's differencing disk over golden.vhd (made by make_golden)."""
    return f"""
[server]
state_dir = "state"
[iscsi]
portals = ["127.0.0.1:@PORT@"]
[[image]]
name = "golden"
path = "golden.vhd"
[[client]]
name = "{CLIENT}"
mac = "52:54:00:00:00:01"
image = "golden"
{SNAPSHOTS_SECTION}
{extra}
"""


def make_golden(workdir: Path, size: str = "64MiB") -> Path:
    golden = workdir / "golden.vhd"
    bootsrv_cli(workdir, "disk", "create", str(golden), "--size", size)
    return golden


def bootsrv_cli(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=workdir, check=check)


def snapshot(server: Server, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return bootsrv_cli(server.workdir, "snapshot", *args, "-c", str(server.config), check=check)


def snapshot_ids(server: Server) -> list[int]:
    rows = json.loads(snapshot(server, "list", "--json").stdout)
    return [row["id"] for row in rows]


def mount_url(server: Server, disk: str, snap_id: int) -> str:
    return server.url(f"{DEFAULT_BASE_IQN}:snap.{disk}.{snap_id}")


def read_through_mount(server: Server, disk: str, snap_id: int, out: Path) -> bytes:
    """Mount the snapshot read-only over iSCSI, read it whole with qemu-img, unmount."""
    snapshot(server, "mount", str(snap_id), "--iscsi")
    try:
        run(["qemu-img", "convert", "-f", "raw", "-O", "raw", mount_url(server, disk, snap_id), str(out)],
            timeout=300)
    finally:
        snapshot(server, "unmount", str(snap_id))
    data = out.read_bytes()
    out.unlink()
    return data


def pyvhdi_read(files: list[Path], size: int) -> bytes:
    """Read a differencing chain (top first) with libvhdi, each parent set by hand."""
    script = f"""
import pyvhdi, sys
files = {[str(f) for f in files]!r}
handles = []
for name in reversed(files):
    h = pyvhdi.file(); h.open(name)
    if handles: h.set_parent(handles[-1])
    handles.append(h)
sys.stdout.buffer.write(handles[-1].read_buffer({size}))
"""
    result = subprocess.run([SYSTEM_PYTHON, "-c", script], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def write_image(server: Server, url: str, data: bytes, scratch: Path) -> None:
    scratch.write_bytes(data)
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(scratch), url], timeout=300)
    scratch.unlink()


def write_sectors(url: str, writes: list[tuple[int, bytes]]) -> None:
    """Writes of any sector granularity, each (offset, data), through qemu-io in one session."""
    with tempfile.TemporaryDirectory() as folder:
        commands: list[str] = []
        for number, (offset, data) in enumerate(writes):
            source = Path(folder) / f"write-{number}"
            source.write_bytes(data)
            commands += ["-c", f"write -q -s {source} {offset} {len(data)}"]
        run([require_tool("qemu-io"), "-f", "raw", *commands, url], timeout=120)


class SequenceWriter(threading.Thread):
    """Writes 4 KiB slot n with the number n+1, one command at a time, and records when
    each write was sent and when it was acknowledged."""

    SLOT = 4096

    def __init__(self, port: int, target: str, initiator: str, slots: int) -> None:
        super().__init__(daemon=True)
        self.port, self.target, self.initiator, self.slots = port, target, initiator, slots
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.writes: list[tuple[int, float, float]] = []  # (slot, sent, acknowledged)
        self.errors: list[str] = []

    @staticmethod
    def pattern(slot: int) -> bytes:
        return (slot + 1).to_bytes(8, "big") * (SequenceWriter.SLOT // 8)

    def run(self) -> None:
        client = RawInitiator(self.port)
        try:
            client.login(digests=False, target=self.target, initiator=self.initiator)
            self.ready.set()
            for slot in range(self.slots):
                if self.stop.is_set():
                    break
                sent = time.monotonic()
                client.write10(0x100 + slot, slot * self.SLOT // 512, self.pattern(slot))
                response = client.recv()
                acknowledged = time.monotonic()
                if response.status != 0:
                    self.errors.append(f"slot {slot}: status {response.status:#x}")
                    break
                self.writes.append((slot, sent, acknowledged))
        except Exception as exc:  # the test reports it: the client must see no error
            self.errors.append(repr(exc))
        finally:
            self.ready.set()
            client.close()


Cut = tuple[int, float, float]  # (snapshot id, before the request, after the answer)


def snapshots_while_writing(server: Server, disk: str, writer: "SequenceWriter", count: int,
                            pause: float) -> list[Cut]:
    """Take `count` snapshots of the disk while `writer` writes to it; stop the writer after
    writing a little past the last one (those writes must stay out of every snapshot)."""
    cuts = []
    for _ in range(count):
        time.sleep(pause)
        before = time.monotonic()
        out = snapshot(server, "create", disk).stdout
        after = time.monotonic()
        cuts.append((int(out.split()[1]), before, after))
        print(out.strip())
    time.sleep(0.5)
    writer.stop.set()
    writer.join(60)
    return cuts


def check_cut(image: bytes, writes: list[tuple[int, float, float]], cut: Cut) -> None:
    """The snapshot's image holds every write acknowledged before it was asked for, none sent
    after it answered, and each write in between whole or not at all."""
    snap_id, before, after = cut
    inside = outside = 0
    for slot, sent, acknowledged in writes:
        got = image[slot * SequenceWriter.SLOT:(slot + 1) * SequenceWriter.SLOT]
        if acknowledged < before:
            assert got == SequenceWriter.pattern(slot), f"snapshot {snap_id}: acknowledged write {slot} missing"
            inside += 1
        elif sent > after:
            assert got == bytes(SequenceWriter.SLOT), f"snapshot {snap_id}: later write {slot} leaked in"
            outside += 1
        else:
            assert got in (SequenceWriter.pattern(slot), bytes(SequenceWriter.SLOT)), f"slot {slot} torn"
    assert inside and outside, (snap_id, inside, outside)


def held_ms(server: Server) -> list[float]:
    """How long each snapshot held the disk's writes, from the server's log."""
    return [float(line.split("held ")[1].split(" ms")[0]) for line in server.log_text().splitlines()
            if "writes held" in line]


def rollback_over_a_client(server: Server, snap_id: int, target: str) -> None:
    """Roll back while a client is logged in to the disk: refused without --force; with it,
    the client's session is dropped."""
    client = RawInitiator(server.port)
    try:
        client.login(digests=False, target=target)
        refused = snapshot(server, "rollback", str(snap_id), check=False)
        assert refused.returncode == 1 and "session" in refused.stderr, refused.stderr
        snapshot(server, "rollback", str(snap_id), "--force")
        with pytest.raises((ConnectionError, OSError)):
            client.send(request_bhs(0x00, 0x80, 0x99, 0xFFFFFFFF, client.cmdsn))
            client.recv()
    finally:
        client.close()
