"""The DHCP socket shell: UDP port 67 on one interface, decisions by DhcpPolicy."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import time
from typing import Any, Awaitable, Callable, Coroutine

from bootsrv.dhcp.packet import ACK, DhcpPacket, PacketError
from bootsrv.dhcp.policy import Adopt, DhcpPolicy, Effect, Reply

log = logging.getLogger("bootsrv.dhcp")
_SIOCGIFADDR, _SIOCGIFNETMASK = 0x8915, 0x891B


def interface_ipv4(interface: str) -> tuple[str, str]:
    """(address, netmask) of an interface, as the kernel has them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", interface.encode()[:15])
        try:
            address = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)[20:24])
            mask = socket.inet_ntoa(fcntl.ioctl(sock.fileno(), _SIOCGIFNETMASK, request)[20:24])
        except OSError as exc:
            raise OSError(f"interface {interface!r} has no IPv4 address: {exc.strerror}") from None
    return address, mask


class DhcpService(asyncio.DatagramProtocol):
    """Port 67 (and, in proxy mode, the PXE port 4011) on one interface."""

    def __init__(self, policy: DhcpPolicy, interface: str, port: int = 67,
                 carry_out: Callable[[list[Effect]], Awaitable[None]] | None = None) -> None:
        self.policy = policy
        self.interface = interface
        self.port = port
        self.transport: asyncio.DatagramTransport | None = None
        # The appliance carries out the policy's effects (reset a disk, adopt a client) off the
        # event loop; the answer that goes with them waits until they are done.
        self.carry_out = carry_out
        self._pending: set[asyncio.Task[None]] = set()
        self.requests = 0  # datagrams received (the dashboard's DHCP activity)

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        # Only this interface: requests from elsewhere never reach us, replies leave here.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
        sock.bind(("0.0.0.0", self.port))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, sock=sock)
        log.info("DHCP (%s mode) on %s port %d as %s", self.policy.config.mode, self.interface, self.port,
                 self.policy.server_ip)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1
        try:
            request = DhcpPacket.decode(data)
        except PacketError as exc:
            log.debug("ignoring a datagram from %s: %s", addr[0], exc)
            return
        try:
            reply = self.policy.handle(request, time.time(), port=self.port, source=addr)
        except Exception:  # one bad request must not stop the service
            log.exception("DHCP request from %s failed", request.mac)
            return
        effects = self.policy.take_effects()
        if effects and self.carry_out is not None:
            self._later(self._after(effects, reply, request, addr))
            return
        if reply is not None and reply.packet.message_type == ACK:
            self._later(self._when_durable(reply))  # never an ACK for a lease not yet on disk
            return
        self._send(reply)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _when_durable(self, reply: Reply) -> None:
        try:
            await asyncio.wrap_future(self.policy.leases.durable())
        except Exception:  # noqa: BLE001 - logged by the lease writer; the client asks again
            return
        self._send(reply)

    async def _after(self, effects: list[Effect], reply: Reply | None, request: DhcpPacket,
                     addr: tuple[str, int]) -> None:
        try:
            await self.carry_out(effects)  # type: ignore[misc]
            if reply is None and any(isinstance(e, Adopt) for e in effects):
                # Adopted: answer this DISCOVER now rather than at the ROM's next try, seconds later.
                reply = self.policy.handle(request, time.time(), port=self.port, source=addr)
                await self.carry_out(self.policy.take_effects())  # type: ignore[misc]
            await asyncio.wrap_future(self.policy.leases.durable())
        except Exception:  # noqa: BLE001 - logged; the client asks again
            log.exception("carrying out %s failed", effects)
            return
        self._send(reply)

    def _send(self, reply: Reply | None) -> None:
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply.packet.encode(), (reply.address, reply.port))

    def close(self) -> None:
        for task in self._pending:
            task.cancel()
        if self.transport is not None:
            self.transport.close()
