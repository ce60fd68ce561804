"""Load: 256 sessions doing mixed I/O at once for a minute. Every read returns
what that session last wrote there, no session is dropped, and the server's
memory and descriptors stay flat (a leak per command or per session would show)."""

from __future__ import annotations

import os
import random
import struct
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import scratch_config
from tests.e2e.test_wire import RawInitiator

pytestmark = pytest.mark.e2e
SESSIONS = 256
SECONDS = 60
SLOTS = 64  # 4 KiB slots per session: its own 256 KiB of the disk


def read10(client: RawInitiator, itt: int, lba: int, length: int) -> bytes:
    bhs = bytearray(48)
    bhs[0], bhs[1] = 0x01, 0x80 | 0x40 | 0x01  # SCSI Command, F, R, SIMPLE
    struct.pack_into(">III", bhs, 16, itt, length, client.cmdsn)
    client.cmdsn += 1
    bhs[32:42] = struct.pack(">BBIBHB", 0x28, 0, lba, 0, length // 512, 0)
    client.send(bhs)
    data = b""
    while True:
        reply, segment = client.recv()
        opcode = reply[0] & 0x3F
        if opcode == 0x25:  # Data-In, perhaps with the status
            data += segment
            if reply[1] & 0x01:
                assert reply[3] == 0, reply.hex()
                return data
        else:
            assert opcode == 0x21 and reply[3] == 0, (reply.hex(), segment.hex())
            return data


def server_usage(pid: int) -> tuple[float, int]:
    """(RSS MiB, open descriptors) of the server."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


def test_256_sessions_of_mixed_io_for_a_minute(run_server):
    server = run_server(scratch_config(f"{SESSIONS * SLOTS * 4}KiB"))
    clients = []
    for n in range(SESSIONS):  # one after the other, as a lab's machines come up
        client = RawInitiator(server.port)
        client.login(digests=False, initiator=f"iqn.2026-11.test:load{n:03d}")
        clients.append(client)
    stop, done = threading.Event(), [0] * SESSIONS
    failures: list[str] = []

    def work(n: int, client: RawInitiator) -> None:
        rng, itt, written = random.Random(n), 1, {}
        try:
            while not stop.is_set():
                slot = rng.randrange(SLOTS)
                lba = (n * SLOTS + slot) * 8
                if slot in written and rng.random() < 0.5:
                    assert read10(client, itt, lba, 4096) == written[slot], f"session {n} slot {slot}"
                else:
                    data = rng.randbytes(4096)
                    client.write10(itt, lba, data)
                    reply, _ = client.recv()
                    assert reply[0] & 0x3F == 0x21 and reply[3] == 0, reply.hex()
                    written[slot] = data
                itt += 1
                done[n] += 1
        except Exception as exc:  # noqa: BLE001  (reported below, with the session)
            failures.append(f"session {n}: {exc!r}")

    threads = [threading.Thread(target=work, args=(n, c), daemon=True) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    time.sleep(SECONDS / 6)  # warmed up: buffers and caches have grown to what the load needs
    rss_before, fds_before = server_usage(server.proc.pid)
    time.sleep(SECONDS * 5 / 6)
    rss_after, fds_after = server_usage(server.proc.pid)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.close()
    assert not failures, failures[:5]
    assert min(done) > 0, "a session made no progress"
    assert fds_after == fds_before, (fds_before, fds_after)
    assert rss_after - rss_before < 16, (rss_before, rss_after)
    print(f"\n{SESSIONS} sessions, {sum(done)} commands in {SECONDS} s; server RSS {rss_before:.0f} -> "
          f"{rss_after:.0f} MiB, descriptors {fds_before} -> {fds_after}")
