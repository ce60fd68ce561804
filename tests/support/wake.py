"""Wake-on-LAN test wiring: a server namespace, the lab's wire and a routed room, and a
packet capture (our own AF_PACKET socket) inside a namespace.

    server ns  a0 10.91.0.1/24 ==== b0 10.91.0.2/24  lab ns (the lab's wire; the room's router)
                                     b1 10.92.0.1/24 ==== c0 10.92.0.2/24  room ns (routed room)

The lab namespace forwards directed broadcasts (bc_forwarding, RFC 2644's opt-in) from
the server's wire to the room's, as a router configured for Wake-on-LAN does.
Sockets are opened by a thread that entered the namespace (setns); a socket stays in
the namespace it was made in, so the test's own thread then reads it.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator, TypeVar

from tests.support.namespaces import Namespace, require_root, sh
from tests.support.paths import checkout_env

CLONE_NEWNET = 0x40000000
ETH_P_IP = 0x0800
T = TypeVar("T")


def cli_argv(*args: object) -> list[str]:
    return [sys.executable, "-m", "bootsrv", *map(str, args)]


def cli_in(ns: Namespace, *args: object) -> subprocess.CompletedProcess:
    """The bootsrv CLI run inside a namespace, as an admin on that host would."""
    return subprocess.run(ns.cmd(*cli_argv(*args)), capture_output=True, text=True, env=checkout_env(), timeout=120)


def in_netns(name: str, make: Callable[[], T]) -> T:
    """Call `make` on a thread inside network namespace `name` (sockets it opens stay there)."""
    done: dict[str, object] = {}

    def run() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {name}")
            done["value"] = make()
        except BaseException as exc:  # re-raised on the caller's thread
            done["error"] = exc
        finally:
            os.close(fd)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in done:
        raise done["error"]  # type: ignore[misc]
    return done["value"]  # type: ignore[return-value]


@dataclass
class WakeNets:
    server: Namespace
    lab: Namespace
    room: Namespace

    def remove(self) -> None:
        for ns in (self.server, self.lab, self.room):
            ns.remove()


def wake_namespaces() -> Iterator[WakeNets]:
    require_root()
    tag = secrets.token_hex(3)
    nets = WakeNets(Namespace(f"bwake-srv-{tag}"), Namespace(f"bwake-lab-{tag}"), Namespace(f"bwake-room-{tag}"))
    try:
        for ns in (nets.server, nets.lab, nets.room):
            sh("ip", "netns", "add", ns.name)
            sh("ip", "-n", ns.name, "link", "set", "lo", "up")
        server, lab, room = nets.server.name, nets.lab.name, nets.room.name
        sh("ip", "-n", server, "link", "add", "a0", "type", "veth", "peer", "name", "b0", "netns", lab)
        sh("ip", "-n", lab, "link", "add", "b1", "type", "veth", "peer", "name", "c0", "netns", room)
        for ns, dev, address in ((server, "a0", "10.91.0.1/24"), (lab, "b0", "10.91.0.2/24"),
                                 (lab, "b1", "10.92.0.1/24"), (room, "c0", "10.92.0.2/24")):
            sh("ip", "-n", ns, "addr", "add", address, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "-n", server, "route", "add", "10.92.0.0/24", "via", "10.91.0.2")
        for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.bc_forwarding=1", "net.ipv4.conf.b0.bc_forwarding=1"):
            sh("ip", "netns", "exec", lab, "sysctl", "-qw", key)
        yield nets
    finally:
        nets.remove()


@dataclass(frozen=True)
class Frame:
    eth_dst: bytes
    ip_dst: str
    port: int
    payload: bytes


class Capture:
    """UDP frames to `ip_dst`:`port` arriving on `interface` of a namespace, read off the wire
    (AF_PACKET), so the link-layer destination is seen too."""

    def __init__(self, ns: str, interface: str, ip_dst: str, port: int = 9) -> None:
        def open_socket() -> socket.socket:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
            sock.bind((interface, ETH_P_IP))
            return sock

        self.sock = in_netns(ns, open_socket)
        self.ip_dst, self.port = ip_dst, port

    def frames(self, count: int, timeout: float = 20) -> list[Frame]:
        """The next `count` frames to our port (a readiness wait, not a speed assertion)."""
        found: list[Frame] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            data, (_, _, kind, *_) = self.sock.recvfrom(65536)
            if kind == socket.PACKET_OUTGOING:
                continue
            frame = self._udp(data)
            if frame is not None and frame.port == self.port and frame.ip_dst == self.ip_dst:
                found.append(frame)
        return found

    def broadcasts(self, count: int) -> list[bytes]:
        """The payloads of the next `count` frames, sorted; each must be a link-layer broadcast
        (a sleeping card has no address the sender could resolve)."""
        frames = self.frames(count)
        assert all(f.eth_dst == b"\xff" * 6 for f in frames), [f.eth_dst.hex() for f in frames]
        return sorted(f.payload for f in frames)

    def quiet(self) -> list[Frame]:
        """Frames already queued, without waiting for more."""
        return self.frames(1 << 16, timeout=0.5)

    @staticmethod
    def _udp(data: bytes) -> Frame | None:
        if len(data) < 14 + 20 + 8 or data[12:14] != b"\x08\x00" or data[14 + 9] != socket.IPPROTO_UDP:
            return None
        header = (data[14] & 0x0F) * 4
        udp = 14 + header
        port = struct.unpack("!H", data[udp + 2:udp + 4])[0]
        length = struct.unpack("!H", data[udp + 4:udp + 6])[0]
        return Frame(data[:6], socket.inet_ntoa(data[14 + 16:14 + 20]), port, data[udp + 8:udp + length])

    def close(self) -> None:
        self.sock.close()
