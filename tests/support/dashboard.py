"""Helpers for the dashboard tests: a client's configuration with the web listener, a fast
history and Wake-on-LAN sent to a loopback port; a capture of magic packets on that port;
real I/O on the client's disk; Chromium through Playwright; and where screenshots go."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.initiator import RawInitiator
from tests.support.paths import BUILD
from tests.support.snapshots import CLIENT_INITIATOR, CLIENT_IQN, client_config

TOKEN = "dashboard-test-token-0123"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = BUILD / "screenshots"
BLOCK = 32 * 1024  # one WRITE (10) as immediate data (within the 64 KiB first burst)


def live_config(web_port: int, wake_port: int, history_interval: float = 0.5) -> str:
    """One client over golden.vhd, the dashboard on loopback, magic packets to 127.0.0.1:wake_port,
    and a snapshot schedule that will not run during the test (it shows "not run yet")."""
    return client_config(f"""
[[snapshots.schedule]]
name = "nightly"
cron = "0 3 1 1 *"
disks = ["*"]
[web]
listen = "127.0.0.1:{web_port}"
token = "{TOKEN}"
history_interval = {history_interval}
[wake]
broadcast = "127.0.0.1:{wake_port}"
""")


def http(port: int, path: str, body: dict | None = None, token: str | None = TOKEN) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode() if body else None,
                                     method="POST" if body is not None else "GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wake_listener() -> socket.socket:
    """A UDP socket on a free loopback port, where the server is told to send magic packets."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(30)
    return sock


def magic_packet_of(mac: str) -> bytes:
    """What a Wake-on-LAN packet for `mac` must hold: 6 bytes 0xFF, then the MAC 16 times."""
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16


class DiskClient:
    """The diskless client's iSCSI session on its disk: real writes and reads."""

    def __init__(self, port: int) -> None:
        self.initiator = RawInitiator(port)
        self.initiator.login(digests=False, target=CLIENT_IQN, initiator=CLIENT_INITIATOR)
        self.itt = 0x100

    def _next_itt(self) -> int:
        self.itt += 1
        return self.itt

    def write(self, lba: int, data: bytes) -> None:
        for offset in range(0, len(data), BLOCK):
            self.initiator.write10(self._next_itt(), lba + offset // 512, data[offset:offset + BLOCK])
            self.initiator.expect_good()

    def read(self, lba: int, length: int) -> bytes:
        return b"".join(self.initiator.read10(self._next_itt(), lba + offset // 512, min(BLOCK, length - offset))
                        for offset in range(0, length, BLOCK))

    def close(self) -> None:
        self.initiator.close()


def screenshot(page, name: str) -> Path:
    """A full-page PNG under build/screenshots/ (kept for the closing note)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
