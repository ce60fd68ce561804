"""DHCP/BOOTP packets (RFC 2131 / 2132): decode and encode, options included.

Options are kept as raw bytes by code; helpers read the common ones. Option
overload (52) folds the file and sname fields into the options on decode.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass, field

MAGIC = b"\x63\x82\x53\x63"
_FIXED = struct.Struct(">BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes before the magic cookie

BOOTREQUEST, BOOTREPLY = 1, 2
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MESSAGE_NAMES = {1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE",
                 8: "INFORM"}

OPT_SUBNET, OPT_ROUTER, OPT_DNS, OPT_HOSTNAME, OPT_DOMAIN = 1, 3, 6, 12, 15
OPT_ROOT_PATH, OPT_VENDOR_SPECIFIC, OPT_REQUESTED_IP, OPT_LEASE_TIME, OPT_OVERLOAD = 17, 43, 50, 51, 52
OPT_MESSAGE_TYPE, OPT_SERVER_ID, OPT_PARAMS, OPT_MESSAGE = 53, 54, 55, 56
OPT_RENEWAL, OPT_REBINDING, OPT_VENDOR_CLASS, OPT_CLIENT_ID, OPT_TFTP_SERVER, OPT_BOOTFILE = 58, 59, 60, 61, 66, 67
OPT_USER_CLASS, OPT_RELAY_AGENT, OPT_CLIENT_ARCH, OPT_CLIENT_NDI, OPT_UUID = 77, 82, 93, 94, 97
OPT_IPXE_ENCAP, OPT_ISCSI_INITIATOR = 175, 203
PAD, END = 0, 255


class PacketError(ValueError):
    """A datagram that is not a DHCP packet we can answer."""


@functools.lru_cache(maxsize=8192)  # a handful of server addresses and one per client: parsed once
def ip_bytes(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed


def ip_str(raw: bytes) -> str:
    if len(raw) == 4:
        return f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"
    return str(ipaddress.IPv4Address(raw))  # raises the usual error


@dataclass(slots=True)
class DhcpPacket:
    op: int = BOOTREPLY
    htype: int = 1
    hlen: int = 6
    hops: int = 0
    xid: int = 0
    secs: int = 0
    flags: int = 0
    ciaddr: str = "0.0.0.0"
    yiaddr: str = "0.0.0.0"
    siaddr: str = "0.0.0.0"
    giaddr: str = "0.0.0.0"
    chaddr: bytes = b"\0" * 16
    sname: bytes = b""
    file: bytes = b""
    options: dict[int, bytes] = field(default_factory=dict)

    @property
    def mac(self) -> str:
        return ":".join(f"{b:02x}" for b in self.chaddr[: min(self.hlen, 16)])

    @property
    def message_type(self) -> int:
        raw = self.options.get(OPT_MESSAGE_TYPE, b"")
        return raw[0] if len(raw) == 1 else 0

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & 0x8000)

    def option_ip(self, code: int) -> str | None:
        raw = self.options.get(code)
        return ip_str(raw) if raw is not None and len(raw) == 4 else None

    def user_classes(self) -> list[bytes]:
        """Option 77, in RFC 3004 framing or as one plain string (what iPXE sends)."""
        raw = self.options.get(OPT_USER_CLASS, b"")
        classes, pos = [], 0
        while pos < len(raw):
            length = raw[pos]
            if length == 0 or pos + 1 + length > len(raw):
                return [raw]  # not RFC 3004 framing: a plain string
            classes.append(raw[pos + 1: pos + 1 + length])
            pos += 1 + length
        return classes

    @property
    def client_arch(self) -> int | None:
        raw = self.options.get(OPT_CLIENT_ARCH)
        return int.from_bytes(raw[:2], "big") if raw and len(raw) >= 2 else None

    @property
    def is_ipxe(self) -> bool:
        return OPT_IPXE_ENCAP in self.options or any(c == b"iPXE" for c in self.user_classes())

    @classmethod
    def decode(cls, data: bytes) -> "DhcpPacket":
        if len(data) < _FIXED.size + 4:
            raise PacketError(f"{len(data)} bytes is too short for DHCP")
        (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, sname,
         file) = _FIXED.unpack_from(data)
        if data[_FIXED.size:_FIXED.size + 4] != MAGIC:
            raise PacketError("no DHCP magic cookie (plain BOOTP is not served)")
        if htype != 1 or hlen != 6:
            raise PacketError(f"hardware type {htype}/{hlen} is not Ethernet")
        options = _decode_options(data[_FIXED.size + 4:])
        overload = options.get(OPT_OVERLOAD, b"\0")[:1]
        if overload and overload[0] & 1:
            _merge(options, _decode_options(file))
            file = b""
        if overload and overload[0] & 2:
            _merge(options, _decode_options(sname))
            sname = b""
        return cls(op, htype, hlen, hops, xid, secs, flags, ip_str(ciaddr), ip_str(yiaddr), ip_str(siaddr),
                   ip_str(giaddr), chaddr, sname.rstrip(b"\0"), file.rstrip(b"\0"), options)

    def encode(self) -> bytes:
        head = _FIXED.pack(self.op, self.htype, self.hlen, self.hops, self.xid, self.secs, self.flags,
                           ip_bytes(self.ciaddr), ip_bytes(self.yiaddr), ip_bytes(self.siaddr),
                           ip_bytes(self.giaddr), self.chaddr.ljust(16, b"\0")[:16],
                           self.sname[:63].ljust(64, b"\0"), self.file[:127].ljust(128, b"\0"))
        body = bytearray(MAGIC)
        message_type = self.options.get(OPT_MESSAGE_TYPE)
        if message_type is not None:  # first, as some ROMs expect
            body += bytes((OPT_MESSAGE_TYPE, len(message_type))) + message_type
        for code, value in self.options.items():
            if code == OPT_MESSAGE_TYPE:
                continue
            for start in range(0, max(len(value), 1), 255):  # long options split (RFC 3396)
                chunk = value[start:start + 255]
                body += bytes((code, len(chunk))) + chunk
        body.append(END)
        packet = head + bytes(body)
        return packet.ljust(300, b"\0")  # BOOTP minimum size: some ROMs drop shorter replies


def _decode_options(raw: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    pos = 0
    while pos < len(raw):
        code = raw[pos]
        if code == PAD:
            pos += 1
            continue
        if code == END:
            break
        if pos + 1 >= len(raw):
            raise PacketError("option runs past the end of the packet")
        length = raw[pos + 1]
        value = raw[pos + 2: pos + 2 + length]
        if len(value) != length:
            raise PacketError(f"option {code} runs past the end of the packet")
        options[code] = options.get(code, b"") + value  # repeated options concatenate (RFC 3396)
        pos += 2 + length
    return options


def _merge(into: dict[int, bytes], extra: dict[int, bytes]) -> None:
    for code, value in extra.items():
        into[code] = into.get(code, b"") + value
