"""Leases in SQLite under state_dir: they survive restarts, and every change is a transaction."""

from __future__ import annotations

import ipaddress
import sqlite3
from dataclasses import dataclass
from pathlib import Path

OFFER_HOLD = 60.0  # seconds an offered address is kept for its client
DECLINE_HOLD = 600.0  # seconds a declined (conflicting) address rests


@dataclass(frozen=True, slots=True)
class Lease:
    mac: str
    ip: str
    expires: float
    state: str  # "offered" | "bound" | "declined"
    hostname: str = ""


class LeaseStore:
    def __init__(self, path: Path | str, pool: tuple[str, str] | None, reserved: dict[str, str]) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS leases (mac TEXT PRIMARY KEY, ip TEXT UNIQUE, "
                        "expires REAL, state TEXT, hostname TEXT)")
        self.pool = pool
        self.reserved = reserved  # mac -> ip
        self._reserved_ips = set(reserved.values())

    def lookup(self, mac: str) -> Lease | None:
        row = self.db.execute("SELECT mac, ip, expires, state, hostname FROM leases WHERE mac = ?",
                              (mac,)).fetchone()
        return Lease(*row) if row else None

    def by_ip(self, ip: str) -> Lease | None:
        row = self.db.execute("SELECT mac, ip, expires, state, hostname FROM leases WHERE ip = ?", (ip,)).fetchone()
        return Lease(*row) if row else None

    def all(self) -> list[Lease]:
        return [Lease(*r) for r in self.db.execute("SELECT mac, ip, expires, state, hostname FROM leases")]

    def choose(self, mac: str, requested: str | None, now: float) -> str | None:
        """The address to offer this client, or None when the pool is exhausted."""
        if mac in self.reserved:
            return self.reserved[mac]
        current = self.lookup(mac)
        if current is not None and current.state != "declined":
            return current.ip
        if requested and self._free(requested, mac, now) and self._in_pool(requested):
            return requested
        if self.pool is None:
            return None
        first, last = (int(ipaddress.IPv4Address(a)) for a in self.pool)
        for number in range(first, last + 1):
            ip = str(ipaddress.IPv4Address(number))
            if self._free(ip, mac, now):
                return ip
        return None

    def _in_pool(self, ip: str) -> bool:
        if self.pool is None:
            return False
        first, last = (ipaddress.IPv4Address(a) for a in self.pool)
        return first <= ipaddress.IPv4Address(ip) <= last

    def _free(self, ip: str, mac: str, now: float) -> bool:
        if ip in self._reserved_ips and self.reserved.get(mac) != ip:
            return False
        holder = self.by_ip(ip)
        return holder is None or holder.mac == mac or holder.expires < now

    def record(self, mac: str, ip: str, until: float, state: str, hostname: str = "") -> None:
        with self.db:
            self.db.execute("DELETE FROM leases WHERE ip = ? AND mac != ?", (ip, mac))
            self.db.execute("INSERT OR REPLACE INTO leases (mac, ip, expires, state, hostname) VALUES (?,?,?,?,?)",
                            (mac, ip, until, state, hostname))

    def release(self, mac: str) -> None:
        self.db.execute("DELETE FROM leases WHERE mac = ?", (mac,))

    def decline(self, ip: str, now: float) -> None:
        with self.db:
            self.db.execute("DELETE FROM leases WHERE ip = ?", (ip,))
            self.db.execute("INSERT OR REPLACE INTO leases (mac, ip, expires, state, hostname) VALUES (?,?,?,?,?)",
                            (f"declined:{ip}", ip, now + DECLINE_HOLD, "declined", ""))

    def close(self) -> None:
        self.db.close()
