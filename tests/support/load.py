"""A load on a running server and what it costs the server: `sessions` logged-in
initiators doing mixed I/O, each on its own region of the scratch disk (SLOTS 4 KiB
slots), and the server process's memory and descriptors read from /proc.

Used by tests/e2e/test_load.py (a minute), tests/support/abuse.py and bench/soak.py (longer).
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.initiator import RawInitiator

SESSIONS = 256
SLOTS = 64  # 4 KiB slots per session: its own 256 KiB of the disk


def server_usage(pid: int) -> tuple[float, int]:
    """(RSS MiB, open descriptors) of the server."""
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return rss / 1024, len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class LoadResult:
    commands: int
    slowest_session: int  # commands done by the session that did fewest
    rss_mib: tuple[float, float]  # after warm-up, at the end
    descriptors: tuple[int, int]
    failures: list[str]


def mixed_load(port: int, sessions: int, seconds: float) -> LoadResult:
    """`sessions` logged-in initiators, each writing and reading back its own region."""
    clients = []
    for n in range(sessions):  # one after the other, as a lab's machines come up
        client = RawInitiator(port)
        client.login(digests=False, initiator=f"iqn.2026-11.test:load{n:03d}")
        clients.append(client)
    stop, done = threading.Event(), [0] * sessions
    failures: list[str] = []

    def work(n: int, client: RawInitiator) -> None:
        rng, itt, written = random.Random(n), 1, {}
        try:
            while not stop.is_set():
                slot = rng.randrange(SLOTS)
                lba = (n * SLOTS + slot) * 8
                if slot in written and rng.random() < 0.5:
                    assert client.read10(itt, lba, 4096) == written[slot], f"session {n} slot {slot}"
                else:
                    data = rng.randbytes(4096)
                    client.write10(itt, lba, data)
                    client.expect_good()
                    written[slot] = data
                itt += 1
                done[n] += 1
        except Exception as exc:  # noqa: BLE001  (reported below, with the session)
            failures.append(f"session {n}: {exc!r}")

    threads = [threading.Thread(target=work, args=(n, c), daemon=True) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    pid = server_pid(port)
    time.sleep(min(10.0, seconds / 6))  # warmed up: buffers and caches have grown to what the load needs
    rss_before, fds_before = server_usage(pid)
    time.sleep(seconds - min(10.0, seconds / 6))
    rss_after, fds_after = server_usage(pid)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    for client in clients:
        client.close()
    return LoadResult(sum(done), min(done), (rss_before, rss_after), (fds_before, fds_after), failures)


def server_pid(port: int) -> int:
    """The process listening on 127.0.0.1:port (the server under load)."""
    inode = next(line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[1] == f"0100007F:{port:04X}" and line.split()[3] == "0A")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    raise LookupError(f"no process listens on port {port}")
