"""Power-loss trials: bootsrv's disks and state live on the power-cut file system
(tests/support/powercut.py); a client writes with SYNCHRONIZE CACHE and FUA checkpoints
while snapshots are taken and deleted; the server is killed at a random moment
and the file system then loses what a volatile cache would. Checked after each
cut, on the files as the cut left them:

after the restart (the server recovers what the cut interrupted, then stops):
- every write acknowledged with FUA, or before a completed SYNCHRONIZE CACHE,
  reads back (libvhdi following the chain, and qemu-img for a dynamic disk);
  every other write reads, sector by sector, as one of its versions (an
  unacknowledged write in flight at the cut counts as one);
- `bootsrv disk check` passes on every VHD file;
- the catalog lists every snapshot whose creation was acknowledged and none
  whose deletion was, each ready, and the snapshot files are exactly its files.

Used by tests/e2e/test_power_loss.py (a few trials) and bench/soak.py (hundreds).
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from target.stores.vhd import open_vhd
from tests.support.initiator import RAW_INITIATOR, RawInitiator
from tests.support.cli import run_cli
from tests.support.paths import REPO
from tests.support.scratch import SCRATCH_IQN
from tests.support.server import Server, start_server
from tests.support.snapshots import CLIENT, CLIENT_INITIATOR, CLIENT_IQN, SNAPSHOTS_SECTION
from tests.support.tools import libvhdi_read, run

MiB = 1 << 20
SIZE = 64 * MiB
SLOT = 16 * 1024
SECTOR = 512



class PowerCut:
    """The power-cut file system over `backing`, mounted at `mount` (a process of its own)."""

    def __init__(self, backing: Path, mount: Path) -> None:
        mount.mkdir(exist_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.powercut", str(backing), str(mount)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout.readline().strip() == "ready", "the power-cut file system did not mount"

    def _command(self, line: str) -> dict:
        out, _ = self.proc.communicate(line + "\n", timeout=120)
        return json.loads(out.strip().splitlines()[-1])

    def cut(self, seed: int) -> dict:
        return self._command(f"crash {seed}")

    def stop(self) -> dict:
        return self._command("stop")


@dataclass
class Writes:
    durable: dict[int, bytes] = field(default_factory=dict)  # slot -> its last flushed or FUA write
    pending: dict[int, list[bytes]] = field(default_factory=dict)  # slot -> writes acknowledged since
    commands: int = 0

    def acknowledged(self, slot: int, data: bytes, fua: bool) -> None:
        if fua:
            self.durable[slot] = data
            self.pending.pop(slot, None)
        else:
            self.pending.setdefault(slot, []).append(data)

    def flushed(self) -> None:
        self.durable.update((slot, versions[-1]) for slot, versions in self.pending.items())
        self.pending.clear()


def storm(port: int, target: str, initiator: str, rng: random.Random, writes: Writes) -> None:
    """Rewrite random slots (some with FUA, a flush now and then) until the server is killed."""
    client = RawInitiator(port)
    in_flight: tuple[int, bytes] | None = None
    try:
        client.login(digests=False, target=target, initiator=initiator)
        for n in itertools.count():
            slot, data, fua = rng.randrange(SIZE // SLOT), rng.randbytes(SLOT), rng.random() < 0.05
            in_flight = (slot, data)
            client.write10(0x1000 + n, slot * SLOT // SECTOR, data, fua=fua)
            response = client.recv()
            in_flight = None
            assert response.status == 0, response.bhs.hex()
            writes.commands += 1
            writes.acknowledged(slot, data, fua)
            if rng.random() < 1 / 15:
                client.synchronize_cache(0x8000_0000 + n)
                writes.commands += 1
                writes.flushed()
    except (ConnectionError, OSError):  # the server was killed
        if in_flight is not None:  # never acknowledged: it may have landed, wholly or in part
            writes.pending.setdefault(in_flight[0], []).append(in_flight[1])
    finally:
        client.close()


@dataclass
class Tally:
    trials: int = 0
    commands: int = 0
    pages_kept: int = 0
    pages_lost: int = 0
    snapshots_created: int = 0
    snapshots_deleted: int = 0
    snapshot_ops_cut: int = 0  # a create or delete under way when the power went
    files_checked: int = 0
    modes: dict[str, int] = field(default_factory=dict)


class PowerLossDisk:
    """One disk (a standalone dynamic VHD, or a client's differencing VHD over a golden
    image full of data) that lives through trial after trial of power cuts."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind, self.workdir = kind, workdir
        self.backing, self.mount = workdir / "backing", workdir / "mnt"
        self.backing.mkdir(exist_ok=True)
        self.mount.mkdir(exist_ok=True)
        self.tally = Tally()
        self.acknowledged: set[int] = set()  # snapshots whose creation was acknowledged and not deleted
        self.deleted: set[int] = set()
        self.deleting: int | None = None  # a delete under way at the cut
        if kind == "client":
            self.name, self.target, self.initiator = CLIENT, CLIENT_IQN, CLIENT_INITIATOR
            self.file = Path("state") / "clients" / f"{CLIENT}.vhd"
            golden = self.backing / "golden.vhd"
            run_cli("disk", "create", golden, "--size", str(SIZE), check=True)
            self.image = random.Random(7).randbytes(SIZE)
            self._fill(golden, self.image)
        else:
            self.name, self.target, self.initiator = "scratch", SCRATCH_IQN, RAW_INITIATOR
            self.file = Path("disks") / "scratch.vhd"
            self.image = bytes(SIZE)

    @staticmethod
    def _fill(path: Path, data: bytes) -> None:
        store = open_vhd(path)
        for offset in range(0, len(data), 4 * MiB):
            store.write(offset, data[offset:offset + 4 * MiB])
        store.flush()
        store.close()

    def config(self) -> str:
        if self.kind == "client":
            disks = f"""
[[image]]
name = "golden"
path = "mnt/golden.vhd"
[[client]]
name = "{CLIENT}"
mac = "52:54:00:00:00:01"
image = "golden"
"""
        else:
            disks = f"""
[[disk]]
name = "scratch"
path = "mnt/disks/scratch.vhd"
size = "{SIZE}"
[[target]]
iqn = "{SCRATCH_IQN}"
luns = ["scratch"]
"""
        return f"""
[server]
state_dir = "mnt/state"
[iscsi]
portals = ["127.0.0.1:@PORT@"]
{disks}
{SNAPSHOTS_SECTION}
"""

    # ---- one trial ------------------------------------------------------------------
    def trial(self, seed: int) -> None:
        """Run until a power cut; then restart (recovery) and judge what the cut left."""
        fs = PowerCut(self.backing, self.mount)
        try:
            writes = self._run_until_killed(seed, random.Random(seed))
        except BaseException:
            fs.stop()
            raise
        report = fs.cut(seed)
        self.tally.trials += 1
        self.tally.commands += writes.commands
        self.tally.pages_kept += report["pages_kept"]
        self.tally.pages_lost += report["pages_lost"]
        self.tally.modes[report["mode"]] = self.tally.modes.get(report["mode"], 0) + 1
        self.restart()
        self._check_files(seed, writes)

    def restart(self) -> None:
        """Start the server after a cut (it recovers what the cut interrupted), check the
        catalog against the files, and stop it cleanly."""
        fs = PowerCut(self.backing, self.mount)
        try:
            server = start_server(self.workdir, self.config())
            try:
                self._check_catalog(server)
            finally:
                assert server.stop() == 0, server.log_text()
        finally:
            fs.stop()

    def _run_until_killed(self, seed: int, rng: random.Random) -> Writes:
        server = start_server(self.workdir, self.config())
        writes = Writes()
        stop = threading.Event()
        snapshots = threading.Thread(target=self._snapshot_ops, args=(server, random.Random(seed + 1), stop))
        try:
            with_snapshots = seed % 2 == 1
            if with_snapshots:
                snapshots.start()
            # a trial with snapshots lasts long enough for creates and deletes to be cut too
            killer = threading.Timer(rng.uniform(1.0, 8.0) if with_snapshots else rng.uniform(0.2, 1.5),
                                     server.proc.kill)
            killer.start()
            storm(server.port, self.target, self.initiator, rng, writes)
            killer.join()
        finally:
            if server.proc.poll() is None:
                server.proc.kill()
            server.proc.wait(60)
            stop.set()
            if snapshots.ident is not None:
                snapshots.join(120)
        return writes

    def _snapshot_ops(self, server: Server, rng: random.Random, stop: threading.Event) -> None:
        while not stop.wait(rng.uniform(0.05, 0.4)):
            result = self._cli(server, "create", self.name)
            if result.returncode != 0:
                self.tally.snapshot_ops_cut += 1
                return
            self.acknowledged.add(int(result.stdout.split()[1]))
            self.tally.snapshots_created += 1
            # at most a few layers: more deletes, and each trial checks few files
            if len(self.acknowledged) >= 2 and (len(self.acknowledged) > 4 or rng.random() < 0.5):
                oldest = self.deleting = min(self.acknowledged)  # merged into the next layer up
                if self._cli(server, "delete", str(oldest)).returncode != 0:
                    self.tally.snapshot_ops_cut += 1
                    return  # cut short: recovery may finish the delete
                self.deleting = None
                self.acknowledged.discard(oldest)
                self.deleted.add(oldest)
                self.tally.snapshots_deleted += 1

    @staticmethod
    def _cli(server: Server, *args: str) -> subprocess.CompletedProcess:
        return run_cli("snapshot", *args, "-c", server.config, cwd=server.workdir, timeout=120)

    # ---- verdicts -------------------------------------------------------------------
    def _snapshot_files(self) -> list[Path]:
        live = self.backing / self.file
        return sorted((live.parent / f"{live.stem}.snapshots").glob("*.vhd"))

    def _check_files(self, seed: int, writes: Writes) -> None:
        live = self.backing / self.file
        if not live.exists():  # cut before the first start finished creating the disk
            assert not writes.durable and not writes.pending, f"trial {seed}: acknowledged writes, no disk"
            return
        layers = [live, *self._snapshot_files()]
        for path in layers:
            check = run_cli("disk", "check", path, timeout=300)
            assert check.returncode == 0, f"trial {seed}: disk check {path}:\n{check.stdout}{check.stderr}"
            self.tally.files_checked += 1
        chain = layers + ([self.backing / "golden.vhd"] if self.kind == "client" else [])
        read = libvhdi_read(live, *chain)
        assert read.returncode == 0, f"trial {seed}: libvhdi: {read.stderr.decode(errors='replace')}"
        image = read.stdout
        assert len(image) == SIZE, f"trial {seed}: libvhdi read {len(image)} bytes"
        if self.kind == "standalone" and not self._snapshot_files():  # a dynamic VHD: qemu-img reads it too
            raw = self.workdir / "qemu.raw"
            run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(live), str(raw)], timeout=300)
            assert raw.read_bytes() == image, f"trial {seed}: qemu-img and libvhdi disagree"
            raw.unlink()
        for slot, data in writes.durable.items():
            if slot not in writes.pending:
                wrong = [at // SECTOR for at in range(0, SLOT, SECTOR)
                         if image[slot * SLOT + at:slot * SLOT + at + SECTOR] != data[at:at + SECTOR]]
                assert not wrong, f"trial {seed}: flushed write to slot {slot} lost (sectors {wrong})"
        for slot, versions in writes.pending.items():  # unflushed: any version, sector by sector
            before = writes.durable.get(slot, self.image[slot * SLOT:(slot + 1) * SLOT])
            for at in range(0, SLOT, SECTOR):
                got = image[slot * SLOT + at:slot * SLOT + at + SECTOR]
                assert any(got == data[at:at + SECTOR] for data in (before, *versions)), \
                    f"trial {seed}: slot {slot} sector {at // SECTOR} holds data never written there" \
                    f"{' (zeros)' if got == bytes(SECTOR) else ''}"
        self.image = image

    def _check_catalog(self, server: Server) -> None:
        result = self._cli(server, "list", "--json")
        assert result.returncode == 0, result.stderr
        rows = json.loads(result.stdout)
        ids = {row["id"] for row in rows}
        assert all(row["state"] == "ready" for row in rows), rows
        missing = self.acknowledged - ids - {self.deleting}
        assert not missing, f"acknowledged snapshots missing: {missing}"
        self.deleting = None
        assert not self.deleted & ids, f"deleted snapshots back: {self.deleted & ids}"
        listed = {Path(row["file"]).name for row in rows}
        on_disk = {path.name for path in self._snapshot_files()}
        assert listed == on_disk, f"catalog {sorted(listed)} != files {sorted(on_disk)}"
        self.acknowledged = ids  # an interrupted create that recovery finished is a snapshot now


def run_trials(kind: str, workdir: Path, seeds: range, progress: bool = False) -> Tally:
    disk = PowerLossDisk(kind, workdir)
    started = time.monotonic()
    for seed in seeds:
        disk.trial(seed)
        if progress:
            print(f"  power cut {kind} #{disk.tally.trials}: {disk.tally.modes} "
                  f"({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    return disk.tally
