"""IPv6 router advertisements that only say "no IPv6 here": iPXE configures
IPv4 (DHCP) and IPv6 together and waits ~15 s for a router that never comes on
an IPv4-only boot network. An RA with router lifetime 0, no prefixes and no
managed/other flags ends that wait at once; hosts gain no route and no address.
Where bootsrv is not the LAN's DHCP server (proxy mode), the site's routers own IPv6:
the RA then goes only to the iPXE client asking, at its link-local address.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct

log = logging.getLogger("bootsrv.ra")
ROUTER_SOLICITATION, ROUTER_ADVERTISEMENT = 133, 134
ALL_NODES = "ff02::1"


def link_local(mac: str) -> str:
    """The EUI-64 link-local address a NIC (and iPXE) forms from its MAC."""
    octets = bytes.fromhex(mac.replace(":", ""))
    eui = bytes((octets[0] ^ 0x02,)) + octets[1:3] + b"\xff\xfe" + octets[3:]
    return "fe80::" + ":".join(eui[i:i + 2].hex() for i in range(0, 8, 2))


def advertisement() -> bytes:
    # type, code, checksum (the kernel fills it in), hop limit, flags, router lifetime 0,
    # reachable time, retrans timer: an RA from a router that is no router.
    return struct.pack(">BBHBBHII", ROUTER_ADVERTISEMENT, 0, 0, 64, 0, 0, 0, 0)


class RouterAdvertiser:
    def __init__(self, interface: str, answer_solicitations: bool = True) -> None:
        self.interface = interface
        self.answer_solicitations = answer_solicitations
        self.index = socket.if_nametoindex(interface)
        self.sock: socket.socket | None = None

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)  # NDP demands 255
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 255)
        sock.setblocking(False)
        self.sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._readable)
        if self.answer_solicitations:
            log.info("answering IPv6 router solicitations on %s (no IPv6 here)", self.interface)
        else:
            log.info("telling our own iPXE clients on %s that no IPv6 router is coming", self.interface)

    def _readable(self) -> None:
        assert self.sock is not None
        try:
            data, _ = self.sock.recvfrom(1500)
        except OSError:
            return
        if self.answer_solicitations and data[:1] == bytes((ROUTER_SOLICITATION,)):
            self.advertise()

    def advertise(self, to_mac: str | None = None) -> None:
        """To all nodes, or to the host with that MAC only."""
        if self.sock is None:
            return
        try:
            self.sock.sendto(advertisement(), (link_local(to_mac) if to_mac else ALL_NODES, 0, 0, self.index))
        except OSError as exc:  # no link-local address yet (DAD): the next solicitation will do
            log.debug("router advertisement on %s not sent: %s", self.interface, exc)

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
