"""The magic packet (AMD's Magic Packet Technology, 1995): six bytes 0xFF, then the target's
MAC address sixteen times, optionally followed by a SecureOn password (4 or 6 bytes) for
network cards that ask for one. A card wakes on that pattern anywhere in a frame, so the
UDP port does not matter to it; port 9 (discard) is the custom."""

from __future__ import annotations

import re

SYNC = b"\xff" * 6
REPEAT = 16
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-]?)[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def mac_bytes(mac: str) -> bytes:
    """aa:bb:cc:dd:ee:ff, aa-bb-... or aabbccddeeff -> 6 bytes; ValueError naming it otherwise."""
    if not _MAC_RE.match(mac):
        raise ValueError(f"not a MAC address: {mac!r} (expected one like 52:54:00:12:34:56)")
    return bytes.fromhex(mac.replace(":", "").replace("-", ""))


def magic_packet(mac: str, password: bytes = b"") -> bytes:
    if len(password) not in (0, 4, 6):
        raise ValueError(f"a SecureOn password is 4 or 6 bytes, got {len(password)}")
    return SYNC + mac_bytes(mac) * REPEAT + password
