"""kill -9 the server in the middle of a write storm, again and again: after
every restart the VHD checks clean, qemu-img reads it, and every write that
was acknowledged before a completed SYNCHRONIZE CACHE is there.

The storm comes from the raw-wire initiator of tests/support/initiator.py (it must know
exactly which writes and flushes were acknowledged); the verdict comes from
qemu-img reading the file and from `bootsrv disk check`.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading

import pytest

from tests.support.cli import run_cli
from tests.support.faults_summary import record
from tests.support.initiator import RawInitiator
from tests.support.paths import REPO
from tests.support.scratch import SCRATCH_IQN, vhd_config
from tests.support.server import start_server
from tests.support.tools import run

pytestmark = pytest.mark.e2e
MiB = 1 << 20
SLOT = 16 * 1024
DISK = 64 * MiB
TRIALS_DYNAMIC, TRIALS_DIFFERENCING = 20, 6


def storm(port: int, seed: int) -> tuple[dict[int, bytes], dict[int, bytes], bool]:
    """Write distinct slots until the server dies; returns (synced, acknowledged-after-sync, killed)."""
    rng = random.Random(seed)
    slots = list(range(DISK // SLOT))
    rng.shuffle(slots)
    synced: dict[int, bytes] = {}
    pending: dict[int, bytes] = {}
    client = RawInitiator(port)
    try:
        client.login(digests=False)
        for n, slot in enumerate(slots):
            size = rng.choice((4096, 8192, SLOT))
            data = rng.randbytes(size)
            client.write10(0x1000 + n, slot * SLOT // 512, data)
            client.expect_good()
            pending[slot] = data
            if n % 5 == 4:
                client.synchronize_cache(0x9000 + n)
                synced.update(pending)
                pending.clear()
    except (ConnectionError, OSError):
        return synced, pending, True  # the server was killed mid-storm
    finally:
        client.close()
    return synced, pending, False


def one_trial(tmp_path, disk: str, seed: int) -> None:
    record("kill -9", trials=1)
    server = start_server(tmp_path, vhd_config(disk))
    killer = threading.Timer(random.Random(seed).uniform(0.05, 0.5), server.proc.kill)  # SIGKILL
    killer.start()
    synced, pending, killed = storm(server.port, seed)
    assert killed, f"trial {seed}: the storm ended before the kill"
    killer.join()
    server.proc.wait()
    raw = tmp_path / "after.raw"
    run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", disk, str(raw)], timeout=300)
    image = raw.read_bytes()
    for slot, data in synced.items():
        assert image[slot * SLOT: slot * SLOT + len(data)] == data, f"trial {seed}: synced slot {slot} lost"
    for slot, data in pending.items():  # unsynced: old or new, sector by sector, never garbage
        for off in range(0, len(data), 512):
            got = image[slot * SLOT + off: slot * SLOT + off + 512]
            assert got in (data[off:off + 512], bytes(512)), f"trial {seed}: slot {slot} is garbage"
    check = subprocess.run([sys.executable, "-m", "bootsrv", "disk", "check", disk], capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    # The same file serves again after the crash.
    again = start_server(tmp_path, vhd_config(disk))
    try:
        run(["iscsi-inq", again.url(SCRATCH_IQN)])
    finally:
        assert again.stop() == 0


def bootsrv_disk(*args: str) -> None:
    run_cli("disk", *args, check=True, timeout=120)


def test_kill_9_during_writes_to_a_dynamic_vhd(tmp_path):
    disk = str(tmp_path / "crash.vhd")
    bootsrv_disk("create", disk, "--size", f"{DISK}")
    for seed in range(TRIALS_DYNAMIC):
        one_trial(tmp_path, disk, seed)


def test_kill_9_during_writes_to_a_differencing_vhd(tmp_path):
    golden, child = str(tmp_path / "golden.vhd"), str(tmp_path / "child.vhd")
    bootsrv_disk("create", golden, "--size", f"{DISK}")
    bootsrv_disk("create", child, "--parent", golden)
    for seed in range(100, 100 + TRIALS_DIFFERENCING):
        one_trial(tmp_path, child, seed)
