"""iSNSP framing (RFC 4171 section 5): the 12-byte PDU header, TLV attributes, and the
reassembly of a message from its PDUs. Sans-IO: bytes in, messages out, no sockets.

Everything read from the network is bounded: a PDU's payload by its 16-bit length, a
message by MAX_MESSAGE, the messages being reassembled at once by MAX_PARTIAL, the
attributes of a message by MAX_ATTRIBUTES. Anything malformed raises ProtocolError, which
the client answers by dropping the connection (there is no other way to resynchronise a
TCP byte stream).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag

VERSION = 1
HEADER = struct.Struct("!HHHHHH")  # version, function, length, flags, transaction, sequence
TLV = struct.Struct("!II")  # tag, length
MAX_MESSAGE = 256 * 1024  # a reassembled message; ours are a few KiB
MAX_PARTIAL = 4  # messages half received at once (the server answers one request at a time)
MAX_ATTRIBUTES = 8192
MAX_PDUS = 1024  # of one message
# open-isns reads at most 8 KiB per PDU (ISNS_MAX_MESSAGE) and answers within 8 KiB: the
# client keeps its PDUs well under that.
PDU_PAYLOAD_LIMIT = 8192 - HEADER.size


class ProtocolError(Exception):
    """Bytes that are not iSNSP: the connection cannot continue."""


class Function(IntEnum):
    DEV_ATTR_REG = 0x0001
    DEV_ATTR_QRY = 0x0002
    DEV_GET_NEXT = 0x0003
    DEV_DEREG = 0x0004
    SCN_REG = 0x0005
    SCN_DEREG = 0x0006
    SCN_EVENT = 0x0007
    SCN = 0x0008
    ESI = 0x000D
    HEARTBEAT = 0x000E

    @property
    def response(self) -> int:
        return self | RESPONSE


RESPONSE = 0x8000  # a response's function ID is its request's with this bit set


class Flag(IntFlag):
    CLIENT = 0x8000  # sender is the iSNS client
    SERVER = 0x4000
    AUTH = 0x2000  # an authentication block follows the payload
    REPLACE = 0x1000  # DevAttrReg: replace the whole entity
    LAST = 0x0800
    FIRST = 0x0400


class Tag(IntEnum):
    DELIMITER = 0
    ENTITY_IDENTIFIER = 1
    ENTITY_PROTOCOL = 2
    TIMESTAMP = 4
    REGISTRATION_PERIOD = 6
    ENTITY_INDEX = 7
    PORTAL_IP_ADDRESS = 16
    PORTAL_PORT = 17
    PORTAL_SYMBOLIC_NAME = 18
    ESI_INTERVAL = 19
    ESI_PORT = 20
    PORTAL_INDEX = 22
    SCN_PORT = 23
    ISCSI_NAME = 32
    ISCSI_NODE_TYPE = 33
    ISCSI_ALIAS = 34
    ISCSI_SCN_BITMAP = 35
    ISCSI_NODE_INDEX = 36
    PG_ISCSI_NAME = 48
    PG_PORTAL_IP_ADDRESS = 49
    PG_PORTAL_PORT = 50
    PG_TAG = 51


class Status(IntEnum):
    SUCCESS = 0
    UNKNOWN_ERROR = 1
    MESSAGE_FORMAT_ERROR = 2
    INVALID_REGISTRATION = 3
    INVALID_QUERY = 5
    SOURCE_UNKNOWN = 6
    SOURCE_ABSENT = 7
    SOURCE_UNAUTHORIZED = 8
    NO_SUCH_ENTRY = 9
    VERSION_NOT_SUPPORTED = 10
    INTERNAL_ERROR = 11
    BUSY = 12
    OPTION_NOT_UNDERSTOOD = 13
    INVALID_UPDATE = 14
    MESSAGE_NOT_SUPPORTED = 15
    ESI_NOT_AVAILABLE = 21
    INVALID_DEREGISTRATION = 22

    @classmethod
    def describe(cls, code: int) -> str:
        try:
            return f"{cls(code).name.lower().replace('_', ' ')} ({code})"
        except ValueError:
            return f"status {code}"


ENTITY_PROTOCOL_ISCSI = 2
NODE_TARGET = 0x1  # iSCSI Node Type bitmap (bit 31, the least significant)


# ---- attributes --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Attr:
    tag: int
    value: bytes = b""  # without padding; empty = a NIL attribute (queries, the delimiter)

    def encode(self) -> bytes:
        pad = -len(self.value) % 4
        return TLV.pack(self.tag, len(self.value) + pad) + self.value + b"\0" * pad

    @property
    def text(self) -> str:
        """A string attribute (null-terminated and padded on the wire)."""
        return self.value.split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def uint32(self) -> int:
        if len(self.value) != 4:
            raise ProtocolError(f"attribute {self.tag}: {len(self.value)} bytes, expected 4")
        return int.from_bytes(self.value, "big")


def string(tag: int, text: str) -> Attr:
    return Attr(tag, text.encode() + b"\0")


def uint32(tag: int, value: int) -> Attr:
    return Attr(tag, value.to_bytes(4, "big"))


def ip_address(tag: int, address: str) -> Attr:
    """16 bytes; an IPv4 address as an IPv4-mapped IPv6 address (RFC 4171 6.3.1)."""
    ip = ipaddress.ip_address(address)
    if ip.version == 4:
        ip = ipaddress.IPv6Address(f"::ffff:{ip}")
    return Attr(tag, ip.packed)


def tcp_port(tag: int, port: int) -> Attr:
    return uint32(tag, port & 0xFFFF)  # bit 15 of the upper half clear: TCP


def address_of(attr: Attr) -> str:
    if len(attr.value) != 16:
        raise ProtocolError(f"attribute {attr.tag}: {len(attr.value)} bytes, expected an address of 16")
    ip = ipaddress.IPv6Address(attr.value)
    return str(ip.ipv4_mapped or ip)


def encode_attrs(attrs: list[Attr]) -> bytes:
    return b"".join(a.encode() for a in attrs)


def decode_attrs(data: bytes | memoryview) -> list[Attr]:
    view = memoryview(data)
    attrs: list[Attr] = []
    offset = 0
    while offset < len(view):
        if len(view) - offset < TLV.size:
            raise ProtocolError(f"{len(view) - offset} bytes left over after the attributes")
        tag, length = TLV.unpack_from(view, offset)
        offset += TLV.size
        if length > len(view) - offset:
            raise ProtocolError(f"attribute {tag} says {length} bytes, {len(view) - offset} are left")
        if len(attrs) >= MAX_ATTRIBUTES:
            raise ProtocolError(f"more than {MAX_ATTRIBUTES} attributes in one message")
        attrs.append(Attr(tag, bytes(view[offset:offset + length])))
        offset += length
    return attrs


# ---- PDUs and messages -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Message:
    function: int
    flags: int
    xid: int
    payload: bytes

    @property
    def is_response(self) -> bool:
        return bool(self.function & RESPONSE)


def encode_message(function: int, flags: int, xid: int, chunks: list[bytes],
                   limit: int = PDU_PAYLOAD_LIMIT) -> bytes:
    """One message as PDUs of at most `limit` payload bytes each, split only between
    `chunks` (whole attributes, so that a reader that does not reassemble still parses each)."""
    pdus: list[bytes] = []
    current = b""
    for chunk in chunks:
        if len(chunk) > limit:
            raise ValueError(f"an attribute of {len(chunk)} bytes does not fit in a PDU")
        if current and len(current) + len(chunk) > limit:
            pdus.append(current)
            current = b""
        current += chunk
    pdus.append(current)
    if len(pdus) > 0xFFFF:
        raise ValueError("too many PDUs for one message")
    out = []
    for seq, payload in enumerate(pdus):
        pdu_flags = flags | (Flag.FIRST if seq == 0 else 0) | (Flag.LAST if seq == len(pdus) - 1 else 0)
        out.append(HEADER.pack(VERSION, function, len(payload), pdu_flags, xid & 0xFFFF, seq) + payload)
    return b"".join(out)


@dataclass(slots=True)
class _Partial:
    function: int
    flags: int
    pdus: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    last: int | None = None


class MessageReader:
    """Bytes in, whole messages out. A message is its PDUs (same transaction ID) put back
    in sequence order once the one flagged LAST and every one before it have arrived."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._partial: dict[int, _Partial] = {}

    def feed(self, data: bytes) -> list[Message]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= HEADER.size:
            version, function, length, flags, xid, seq = HEADER.unpack_from(self._buffer)
            if version != VERSION:
                raise ProtocolError(f"iSNSP version {version}, expected {VERSION}")
            if flags & Flag.AUTH:
                raise ProtocolError("the server signs its messages (authentication blocks are not "
                                    "supported: turn iSNS security off for this client)")
            if len(self._buffer) < HEADER.size + length:
                break  # the rest of this PDU is still on its way (at most 64 KiB buffered)
            payload = bytes(self._buffer[HEADER.size:HEADER.size + length])
            del self._buffer[:HEADER.size + length]
            message = self._add(function, flags, xid, seq, payload)
            if message is not None:
                messages.append(message)
        return messages

    def _add(self, function: int, flags: int, xid: int, seq: int, payload: bytes) -> Message | None:
        if flags & Flag.FIRST and flags & Flag.LAST and xid not in self._partial:
            if seq != 0:
                raise ProtocolError(f"a single-PDU message with sequence number {seq}")
            return Message(function, flags, xid, payload)
        partial = self._partial.get(xid)
        if partial is None:
            if len(self._partial) >= MAX_PARTIAL:
                raise ProtocolError(f"more than {MAX_PARTIAL} messages half received")
            partial = self._partial[xid] = _Partial(function, flags)
        if function != partial.function:
            raise ProtocolError(f"transaction {xid}: PDUs of two functions ({partial.function:#x}, {function:#x})")
        if seq in partial.pdus:
            raise ProtocolError(f"transaction {xid}: PDU {seq} twice")
        if len(partial.pdus) >= MAX_PDUS:
            raise ProtocolError(f"transaction {xid}: more than {MAX_PDUS} PDUs")
        if flags & Flag.LAST and partial.pdus and max(partial.pdus) > seq:
            raise ProtocolError(f"transaction {xid}: PDUs after the last one")
        if partial.last is not None and seq > partial.last:
            raise ProtocolError(f"transaction {xid}: PDU {seq} after the last one ({partial.last})")
        partial.size += len(payload)
        if partial.size > MAX_MESSAGE:
            raise ProtocolError(f"transaction {xid}: a message over {MAX_MESSAGE} bytes")
        partial.pdus[seq] = payload
        partial.flags |= flags  # a message's flags: those of all its PDUs
        if flags & Flag.LAST:
            partial.last = seq
        if partial.last is None or len(partial.pdus) != partial.last + 1:
            return None
        del self._partial[xid]
        return Message(function, partial.flags, xid, b"".join(partial.pdus[i] for i in range(partial.last + 1)))
