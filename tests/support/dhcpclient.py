"""A DHCP client's datagrams, packed by hand as a ROM or an OS would send them, and a
sender to run inside a test's network namespace."""

from __future__ import annotations

import struct
import subprocess
import sys

MAGIC = b"\x63\x82\x53\x63"
PXE_ROM_VENDOR = b"PXEClient:Arch:00000:UNDI:002001"


def discover(mac: str, vendor_class: bytes = b"", xid: int = 0x5EED) -> bytes:
    """A DHCPDISCOVER from `mac`; with vendor class PXEClient it is a boot ROM's, else an OS's."""
    chaddr = bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0")
    head = struct.pack(">BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000, bytes(4), bytes(4),
                       bytes(4), bytes(4), chaddr, bytes(64), bytes(128))
    options = bytes((53, 1, 1))
    if vendor_class:
        options += bytes((60, len(vendor_class))) + vendor_class
        if vendor_class.startswith(b"PXEClient"):
            options += bytes((93, 2, 0, 0))
    return head + MAGIC + options + b"\xff"


_SENDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, sys.argv[1].encode())
s.bind(("0.0.0.0", 68))
for datagram in sys.argv[3:]:
    s.sendto(bytes.fromhex(datagram), ("255.255.255.255", 67))
s.settimeout(float(sys.argv[2]) or None)
try:
    while float(sys.argv[2]) > 0:
        print(s.recv(4096).hex(), flush=True)
except socket.timeout:
    pass
"""


def send_broadcast(netns_cmd: list[str], interface: str, *datagrams: bytes, listen: float = 0.0) -> list[bytes]:
    """Broadcast datagrams to port 67 from `interface` (in the namespace `netns_cmd` enters);
    returns what came back to port 68 within `listen` seconds of the last one."""
    done = subprocess.run([*netns_cmd, sys.executable, "-c", _SENDER, interface, str(listen),
                           *(d.hex() for d in datagrams)], check=True, timeout=60, capture_output=True, text=True)
    return [bytes.fromhex(line) for line in done.stdout.split()]
