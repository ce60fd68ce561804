"""Abuse of a running server over TCP, while a well-behaved client keeps working:

- `live_fuzz`: connections carrying mutated logins and mutated PDU streams (the
  seeds and mutator of tests/support/fuzzseeds.py) against an open scratch target;
- `slow_logins`: half-open logins that trickle one byte at a time (slowloris)
  from several addresses, until the server times them out;
- `Bystander`: a client of another disk (behind an initiator ACL) that writes,
  reads back and flushes throughout, and must see no error and no foreign byte.

Used by tests/e2e/test_abuse.py (short) and bench/soak.py (long).
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from dataclasses import dataclass

from tests.support.initiator import RawInitiator
from tests.support.fuzzseeds import LOGOUT, iscsi_seeds, login_pdu, mutate
from tests.support.load import server_usage

FUZZ_TARGET = "iqn.2026-11.lan.bootsrv:fuzzed"
BYSTANDER_TARGET = "iqn.2026-11.lan.bootsrv:bystander"
BYSTANDER_INITIATOR = "iqn.2026-11.test:bystander"
BYSTANDER_SLOTS = 256  # 4 KiB each


def abuse_config(login_timeout: str = "3s") -> str:
    return f"""
[server]
state_dir = "state"
[iscsi]
portals = ["127.0.0.1:@PORT@"]
login_timeout = "{login_timeout}"
[[disk]]
name = "fuzzed"
path = "disks/fuzzed.img"
size = "16MiB"
[[disk]]
name = "bystander"
path = "disks/bystander.img"
size = "{BYSTANDER_SLOTS * 4}KiB"
[[target]]
iqn = "{FUZZ_TARGET}"
luns = ["fuzzed"]
[[target]]
iqn = "{BYSTANDER_TARGET}"
luns = ["bystander"]
initiators = ["{BYSTANDER_INITIATOR}"]
"""


class Bystander(threading.Thread):
    """Writes 4 KiB slots of its own disk, reads them back, flushes now and then."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True, name="bystander")
        self.port, self.commands = port, 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rng, written, itt = random.Random(5), {}, 1
        try:
            client = RawInitiator(self.port)
            client.login(digests=False, target=BYSTANDER_TARGET, initiator=BYSTANDER_INITIATOR)
            while not self.stop.is_set():
                slot = rng.randrange(BYSTANDER_SLOTS)
                if slot in written and rng.random() < 0.5:
                    got = client.read10(itt, slot * 8, 4096)
                    if got != written[slot]:
                        self.errors.append(f"slot {slot} does not read back what was written")
                else:
                    data = rng.randbytes(4096)
                    client.write10(itt, slot * 8, data)
                    client.expect_good()
                    written[slot] = data
                if rng.random() < 0.05:
                    client.synchronize_cache(0x4000_0000 + itt)
                itt += 1
                self.commands += 1
            client.close()
        except Exception as exc:  # noqa: BLE001  (any error is the finding)
            self.errors.append(repr(exc))

    def finish(self) -> None:
        self.stop.set()
        self.join(60)


def live_fuzz(port: int, inputs: int, seed: int, workers: int = 4) -> int:
    """Send `inputs` mutated streams (each on a fresh connection, most after a good login);
    returns how many were sent. Nothing here judges the replies: the bystander and the
    server's survival do."""
    seeds = iscsi_seeds()
    counter = iter(range(inputs))
    lock = threading.Lock()
    sent = [0]

    def work(worker: int) -> None:
        rng = random.Random(seed * 100 + worker)
        while True:
            with lock:
                if next(counter, None) is None:
                    return
            login = login_pdu(FUZZ_TARGET, f"iqn.2026-11.test:fuzz{worker}")
            if rng.random() < 0.05:  # a login aimed at the bystander's disk: the ACL must refuse it
                login = login_pdu(BYSTANDER_TARGET, f"iqn.2026-11.test:fuzz{worker}")
            stream = [mutate(rng, login) if rng.random() < 0.2 else login]
            for k in range(rng.randint(1, 8)):
                pdu = bytearray(LOGOUT if rng.random() < 0.01 else rng.choice(seeds))
                struct.pack_into(">I", pdu, 24, 2 + k)
                stream.append(mutate(rng, bytes(pdu)) if rng.random() < 0.3 else bytes(pdu))
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(stream[0])
                    sock.settimeout(0.2)  # a mutated login may get no answer at all
                    if rng.random() < 0.5:
                        sock.recv(65536)  # the login answer, so the rest lands in full feature phase
                    sock.sendall(b"".join(stream[1:]))
                    if rng.random() < 0.3:
                        sock.settimeout(0.05)
                        while sock.recv(65536):
                            pass
            except OSError:
                pass  # the server closed a connection it did not like: that is its right
            with lock:
                sent[0] += 1

    threads = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent[0]


@dataclass
class SlowLogins:
    opened: int
    closed_by_server: int
    rss_mib: tuple[float, float]  # before, at the peak of the trickle


def slow_logins(port: int, server_pid: int, addresses: list[str], per_address: int, seconds: float) -> SlowLogins:
    """Each connection sends a login header announcing 8 KiB of keys, then one byte
    every half second; returns once the server has closed them all (login_timeout)."""
    rss_before = server_usage(server_pid)[0]
    socks = []
    for address in addresses:
        for _ in range(per_address):
            sock = socket.socket()
            sock.bind((address, 0))
            sock.settimeout(5)
            try:
                sock.connect(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            socks.append(sock)
    header = bytearray(login_pdu(FUZZ_TARGET)[:48])
    header[5:8] = (8192).to_bytes(3, "big")
    sent = [0] * len(socks)
    closed: set[int] = set()
    peak = rss_before
    deadline = time.monotonic() + seconds
    while len(closed) < len(socks) and time.monotonic() < deadline:
        for n, sock in enumerate(socks):
            if n in closed:
                continue
            try:
                if sock.recv(4096) == b"":
                    closed.add(n)
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed.add(n)
                continue
            try:
                sock.send(bytes(header[sent[n]:sent[n] + 1]) if sent[n] < 48 else b"k")
                sent[n] += 1
            except BlockingIOError:
                pass
            except OSError:
                closed.add(n)
        peak = max(peak, server_usage(server_pid)[0])
        time.sleep(0.5)
    for sock in socks:
        sock.close()
    return SlowLogins(len(socks), len(closed), (rss_before, peak))
