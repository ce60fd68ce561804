"""Where a client's magic packet goes, and sending it.

On the boot interface a packet goes to that interface's broadcast address with
SO_BROADCAST, bound to the interface (SO_BINDTODEVICE), so it leaves on the lab's wire
whatever the routing table prefers. A client in a routed room is woken through its
room's directed-broadcast address (`[[wake.room]]`, or `wake.broadcast` for all), which
the room's router turns into a broadcast on its wire. Sending is a few blocking sendto
calls: callers run it on a worker thread (an operation, a schedule), never on the loop.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bootsrv.config import Config
from bootsrv.dhcp.service import interface_ipv4

log = logging.getLogger("bootsrv.wake")


@dataclass(frozen=True, slots=True)
class Destination:
    host: str
    port: int
    interface: str = ""  # the boot interface, bound to; "" for a directed broadcast (routed)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class WakeError(ValueError):
    """A client cannot be woken as configured (a ValueError: operations answer it in one line)."""


def destination(config: Config, client: str) -> Destination:
    wake = config.wake
    room = next((r for r in wake.rooms if any(fnmatchcase(client, p) for p in r.clients)), None)
    if room is not None:
        return Destination(room.broadcast.host, room.broadcast.port)
    if wake.broadcast is not None:
        return Destination(wake.broadcast.host, wake.broadcast.port)
    interface = wake.interface or config.dhcp.interface
    if not interface:
        raise WakeError(f"{config.path}: no interface to wake {client} on: set dhcp.interface, wake.interface "
                        "or wake.broadcast")
    try:
        address, mask = interface_ipv4(interface)
    except OSError as exc:
        raise WakeError(f"{config.path}: wake: {exc}") from None
    network = ipaddress.IPv4Network(f"{address}/{mask}", strict=False)
    return Destination(str(network.broadcast_address), wake.port, interface)


def send(packets: list[tuple[bytes, Destination]]) -> None:
    """One socket per interface (and one for the routed destinations)."""
    by_interface: dict[str, list[tuple[bytes, Destination]]] = {}
    for packet, where in packets:
        by_interface.setdefault(where.interface, []).append((packet, where))
    for interface, batch in by_interface.items():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if interface:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
                except PermissionError:  # not root: the subnet's broadcast address still routes out there
                    log.debug("wake: cannot bind to %s (needs CAP_NET_RAW); sending unbound", interface)
            for packet, where in batch:
                try:
                    sock.sendto(packet, (where.host, where.port))
                except OSError as exc:
                    raise WakeError(f"wake: cannot send to {where}"
                                    f"{' on ' + interface if interface else ''}: {exc.strerror or exc}") from None
