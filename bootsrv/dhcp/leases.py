"""Leases in SQLite under state_dir: they survive restarts.

Decisions read an in-memory copy (the policy runs on the event loop that also
serves iSCSI, and must not wait for SQL). Changes go to the database in groups:
with `start_writer()`, a thread commits everything that arrived within a few
milliseconds in one transaction (one fsync), and `durable()` tells the DHCP
shell when it may send an ACK: never before its lease is on disk. Without a
writer (tools, tests) each change commits at once.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("bootsrv.dhcp")
OFFER_HOLD = 60.0  # seconds an offered address is kept for its client
DECLINE_HOLD = 600.0  # seconds a declined (conflicting) address rests
GROUP_WINDOW = 0.003  # seconds the writer waits for more changes before it commits


def _dotted(number: int) -> str:
    return f"{number >> 24}.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}"  # ipaddress is 5x slower


@dataclass(frozen=True, slots=True)
class Lease:
    mac: str
    ip: str
    expires: float
    state: str  # "offered" | "bound" | "declined"
    hostname: str = ""


class LeaseStore:
    def __init__(self, path: Path | str, pool: tuple[str, str] | None, reserved: dict[str, str]) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS leases (mac TEXT PRIMARY KEY, ip TEXT UNIQUE, "
                        "expires REAL, state TEXT, hostname TEXT)")
        self.pool = pool
        self._pool_range = tuple(int(ipaddress.IPv4Address(a)) for a in pool) if pool else (0, -1)
        # Where the next search for a free address starts: just past the last one chosen, so
        # a search is one step while the pool fills (from the start it was one step per lease).
        self._cursor = self._pool_range[0]
        self.reserved = reserved  # mac -> ip
        self._reserved_ips = set(reserved.values())
        self._by_mac: dict[str, Lease] = {}
        self._by_ip: dict[str, Lease] = {}
        for row in self.db.execute("SELECT mac, ip, expires, state, hostname FROM leases"):
            self._keep(Lease(*row))
        self._queue: list[tuple[Lease | None, str, str]] = []  # (lease to write or None, mac, ip to clear)
        # Each change gets a number; a waiter is told once the commits reach its number.
        self._queued = self._committed = 0
        self._waiting: list[tuple[int, concurrent.futures.Future[None]]] = []
        self._cond = threading.Condition()
        self._writer: threading.Thread | None = None
        self._closing = False
        self.commits = 0  # transactions written (for the metrics and the benchmark)

    # ---- the in-memory view the policy decides on ---------------------------

    def _keep(self, lease: Lease) -> None:
        old = self._by_ip.get(lease.ip)
        if old is not None and old.mac != lease.mac:
            self._by_mac.pop(old.mac, None)
        previous = self._by_mac.get(lease.mac)
        if previous is not None and previous.ip != lease.ip:
            self._by_ip.pop(previous.ip, None)
        self._by_mac[lease.mac] = lease
        self._by_ip[lease.ip] = lease

    def lookup(self, mac: str) -> Lease | None:
        return self._by_mac.get(mac)

    def by_ip(self, ip: str) -> Lease | None:
        return self._by_ip.get(ip)

    def all(self) -> list[Lease]:
        return list(self._by_mac.values())

    def choose(self, mac: str, requested: str | None, now: float) -> str | None:
        """The address to offer this client, or None when the pool is exhausted."""
        if mac in self.reserved:
            return self.reserved[mac]
        current = self.lookup(mac)
        if current is not None and current.state != "declined":
            return current.ip
        if requested and self._free(requested, mac, now) and self._in_pool(requested):
            return requested
        first, last = self._pool_range
        size = last - first + 1
        for step in range(max(size, 0)):
            number = first + (self._cursor - first + step) % size
            ip = _dotted(number)
            if self._free(ip, mac, now):
                self._cursor = first + (number - first + 1) % size
                return ip
        return None

    def _in_pool(self, ip: str) -> bool:
        try:
            number = int(ipaddress.IPv4Address(ip))
        except ValueError:
            return False
        return self._pool_range[0] <= number <= self._pool_range[1]

    def _free(self, ip: str, mac: str, now: float) -> bool:
        if ip in self._reserved_ips and self.reserved.get(mac) != ip:
            return False
        holder = self.by_ip(ip)
        return holder is None or holder.mac == mac or holder.expires < now

    # ---- changes: memory now, the database grouped --------------------------

    def record(self, mac: str, ip: str, until: float, state: str, hostname: str = "") -> None:
        lease = Lease(mac, ip, until, state, hostname)
        self._keep(lease)
        self._change(lease, mac, ip)

    def release(self, mac: str) -> None:
        lease = self._by_mac.pop(mac, None)
        if lease is not None:
            self._by_ip.pop(lease.ip, None)
        self._change(None, mac, "")

    def decline(self, ip: str, now: float) -> None:
        holder = self._by_ip.pop(ip, None)
        if holder is not None:
            self._by_mac.pop(holder.mac, None)
        self.record(f"declined:{ip}", ip, now + DECLINE_HOLD, "declined", "")

    def _change(self, lease: Lease | None, mac: str, ip: str) -> None:
        if self._writer is None:
            self._write([(lease, mac, ip)])
            return
        with self._cond:
            self._queue.append((lease, mac, ip))
            self._queued += 1
            self._cond.notify()

    def _write(self, changes: list[tuple[Lease | None, str, str]]) -> None:
        with self.db:  # one transaction, one fsync, for the whole group
            for lease, mac, ip in changes:
                if lease is None:
                    self.db.execute("DELETE FROM leases WHERE mac = ?", (mac,))
                    continue
                self.db.execute("DELETE FROM leases WHERE ip = ? AND mac != ?", (ip, mac))
                self.db.execute("INSERT OR REPLACE INTO leases (mac, ip, expires, state, hostname) "
                                "VALUES (?,?,?,?,?)", (lease.mac, lease.ip, lease.expires, lease.state,
                                                       lease.hostname))
        self.commits += 1

    def durable(self) -> concurrent.futures.Future[None]:
        """Done once every change made so far is committed."""
        done: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._cond:
            if self._writer is None or self._committed >= self._queued:
                done.set_result(None)
            else:
                self._waiting.append((self._queued, done))
        return done

    def start_writer(self) -> None:
        self._writer = threading.Thread(target=self._write_groups, name="leases", daemon=True)
        self._writer.start()

    def _write_groups(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue and self._closing:
                    return
            time.sleep(GROUP_WINDOW)  # let the rest of a burst (a classroom powering on) join
            with self._cond:
                changes, self._queue = self._queue, []
                upto = self._queued
            failure: sqlite3.Error | None = None
            try:
                self._write(changes)
            except sqlite3.Error as exc:  # the ACKs waiting on it are not sent: clients ask again
                log.error("lease database: %d changes not written: %s", len(changes), exc)
                failure = exc
            with self._cond:
                self._committed = upto
                ready = [w for w in self._waiting if w[0] <= upto]
                self._waiting = [w for w in self._waiting if w[0] > upto]
            for _, future in ready:
                if failure is None:
                    future.set_result(None)
                else:
                    future.set_exception(failure)

    def close(self) -> None:
        writer = self._writer
        if writer is not None:
            with self._cond:
                self._closing = True
                self._cond.notify()
            writer.join(timeout=30)
            self._writer = None
        self.db.close()
