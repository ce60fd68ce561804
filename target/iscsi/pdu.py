"""iSCSI PDU codec (RFC 7143 section 11), the reader side: framing and field access.

Outgoing headers are built in wire.py (the writer side); `encode` here frames
them with their data, padding and digests.

A PDU is a 48-byte Basic Header Segment, optional Additional Header Segments,
an optional header digest, a data segment padded to 4 bytes and an optional
data digest. Incoming PDUs keep their raw BHS and expose fields as properties,
so parsing costs nothing for fields nobody reads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Callable

from target.iscsi.digest import crc32c

BHS_LEN = 48
DIGEST_LEN = 4
RESERVED_TAG = 0xFFFFFFFF


class Opcode(IntEnum):
    NOP_OUT = 0x00
    SCSI_COMMAND = 0x01
    TASK_MGMT_REQUEST = 0x02
    LOGIN_REQUEST = 0x03
    TEXT_REQUEST = 0x04
    DATA_OUT = 0x05
    LOGOUT_REQUEST = 0x06
    SNACK_REQUEST = 0x10
    NOP_IN = 0x20
    SCSI_RESPONSE = 0x21
    TASK_MGMT_RESPONSE = 0x22
    LOGIN_RESPONSE = 0x23
    TEXT_RESPONSE = 0x24
    DATA_IN = 0x25
    LOGOUT_RESPONSE = 0x26
    R2T = 0x31
    ASYNC_MESSAGE = 0x32
    REJECT = 0x3F


class RejectReason(IntEnum):
    DATA_DIGEST_ERROR = 0x02
    SNACK_REJECT = 0x03
    PROTOCOL_ERROR = 0x04
    COMMAND_NOT_SUPPORTED = 0x05
    IMMEDIATE_COMMAND_REJECT = 0x06
    TASK_IN_PROGRESS = 0x07
    INVALID_DATA_ACK = 0x08
    INVALID_PDU_FIELD = 0x09
    OUT_OF_RESOURCES = 0x0A
    WAITING_FOR_LOGOUT = 0x0C


class FramingError(Exception):
    """The byte stream cannot be trusted any more: the connection must be dropped."""


_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")


def _u32(buf: bytes | bytearray, offset: int) -> int:
    return _U32.unpack_from(buf, offset)[0]


def pad_len(length: int) -> int:
    return -length & 3


@dataclass(slots=True)
class Pdu:
    """One received PDU. `bhs` is the raw 48-byte header."""

    bhs: bytes
    ahs: bytes = b""
    data: bytes | memoryview = b""  # a view for ZERO_COPY_OPCODES: see PduReader
    data_digest_ok: bool = True
    # The data segment was received straight into the buffer the reader's sink
    # named for it (the task's data-out buffer): there is nothing to copy.
    in_place: bool = False

    def detach(self) -> "Pdu":
        """A copy that stays valid after the reader reuses its buffer."""
        return Pdu(self.bhs, self.ahs, bytes(self.data), self.data_digest_ok)

    # Fields common to most initiator PDUs (RFC 7143 11.2.1).
    @property
    def opcode(self) -> int:
        return self.bhs[0] & 0x3F

    @property
    def immediate(self) -> bool:
        return bool(self.bhs[0] & 0x40)

    @property
    def flags(self) -> int:
        return self.bhs[1]

    @property
    def final(self) -> bool:
        return bool(self.bhs[1] & 0x80)

    @property
    def lun_field(self) -> bytes:
        return self.bhs[8:16]

    @property
    def itt(self) -> int:
        return _u32(self.bhs, 16)

    @property
    def ttt(self) -> int:
        """Target transfer tag (Data-Out, NOP-Out, Text) or referenced task tag (TMF)."""
        return _u32(self.bhs, 20)

    @property
    def cmdsn(self) -> int:
        return _u32(self.bhs, 24)

    @property
    def expstatsn(self) -> int:
        return _u32(self.bhs, 28)

    # SCSI Command (11.3)
    @property
    def expected_transfer_length(self) -> int:
        return _u32(self.bhs, 20)

    @property
    def cdb(self) -> bytes:
        # An extended CDB AHS (type 1) carries bytes 16.. of a CDB longer than 16.
        cdb = self.bhs[32:48]
        if self.ahs:
            ext = _extended_cdb(self.ahs)
            if ext:
                cdb = cdb + ext
        return cdb

    # Data-Out (11.7)
    @property
    def datasn(self) -> int:
        return _u32(self.bhs, 36)

    @property
    def buffer_offset(self) -> int:
        return _u32(self.bhs, 40)

    # Login (11.12)
    @property
    def isid(self) -> bytes:
        return self.bhs[8:14]

    @property
    def tsih(self) -> int:
        return _U16.unpack_from(self.bhs, 14)[0]

    @property
    def cid(self) -> int:
        return _U16.unpack_from(self.bhs, 20)[0]

    @property
    def version_max(self) -> int:
        return self.bhs[2]

    @property
    def version_min(self) -> int:
        return self.bhs[3]

    # TMF (11.5)
    @property
    def tmf_function(self) -> int:
        return self.bhs[1] & 0x7F

    @property
    def ref_cmdsn(self) -> int:
        return _u32(self.bhs, 32)

    # Logout (11.14)
    @property
    def logout_reason(self) -> int:
        return self.bhs[1] & 0x7F

    # Target PDUs, as the tests' initiators read them (11.4, 11.6, 11.7.4, 11.8, 11.13, 11.15, 11.17).
    @property
    def response(self) -> int:
        """Response (SCSI, TMF, Logout Response) or reason (Reject)."""
        return self.bhs[2]

    @property
    def status(self) -> int:
        """SCSI status (SCSI Response; Data-In with the S bit)."""
        return self.bhs[3]

    @property
    def statsn(self) -> int:
        return _u32(self.bhs, 24)

    @property
    def expcmdsn(self) -> int:
        return _u32(self.bhs, 28)

    @property
    def maxcmdsn(self) -> int:
        return _u32(self.bhs, 32)

    @property
    def residual_count(self) -> int:
        """Residual count (SCSI Response, Data-In); the desired data length of an R2T."""
        return _u32(self.bhs, 44)

    @property
    def login_status(self) -> int:
        """Status-Class << 8 | Status-Detail of a Login Response."""
        return _U16.unpack_from(self.bhs, 36)[0]


# Flags, LUN, ITT, expected data transfer length, CmdSN, CDB (RFC 7143 11.3), from byte 1:
# the READ and WRITE paths read all of them, in one unpack (SCSI_COMMAND_FIELDS.unpack_from(bhs, 1)).
SCSI_COMMAND_FIELDS = struct.Struct(">B6x8sIII4x16s")
# Opcode byte, flags, DataSegmentLength (as 3 bytes), ITT, bytes 20..23, buffer offset.
_SINK_FIELDS = struct.Struct(">BB3x3s8xII16xI4x")


def sink_fields(bhs: bytes) -> tuple[int, int, int, int, int, int]:
    """(opcode, flags, DataSegmentLength, ITT, bytes 20..23, buffer offset) of a header
    whose data has not arrived yet: what PduReader's sink needs to place it."""
    first, flags, length, itt, field20, offset = _SINK_FIELDS.unpack_from(bhs)
    return first & 0x3F, flags, int.from_bytes(length, "big"), itt, field20, offset


def _extended_cdb(ahs: bytes) -> bytes:
    pos = 0
    while pos + 4 <= len(ahs):
        length = _U16.unpack_from(ahs, pos)[0]
        ahs_type = ahs[pos + 2]
        body = ahs[pos + 4 : pos + 3 + length]  # length counts the reserved byte
        if ahs_type == 1:
            return bytes(body)
        pos += 3 + length + pad_len(3 + length)
    return b""


def lun_from_field(field: bytes) -> int:
    """Decode an 8-byte SAM LUN (peripheral or flat addressing, first level only)."""
    method = field[0] >> 6
    if method in (0, 1):
        return ((field[0] & 0x3F) << 8) | field[1]
    return 0xFFFF  # an addressing method we do not serve: never matches a LUN


def lun_to_field(lun: int) -> bytes:
    if lun < 256:
        return bytes((0, lun, 0, 0, 0, 0, 0, 0))
    return bytes((0x40 | (lun >> 8), lun & 0xFF, 0, 0, 0, 0, 0, 0))


# Data segments of these opcodes are handed out as views into the receive
# buffer (valid until the next get_buffer/feed): their bytes are copied once,
# straight into the task's buffer. Everything else is copied out as bytes.
ZERO_COPY_OPCODES = frozenset({Opcode.DATA_OUT, Opcode.SCSI_COMMAND})
_MIN_FREE = 64 * 1024  # a connection's receive buffer to start with; bulk data goes to its task (sink)
# Below this much room at the tail the buffer is compacted (or grown); a login that
# trickles in byte by byte (slowloris) so never doubles its connection's buffer.
_LOW_FREE = 4096
# A data segment at least this long, not yet wholly received, goes straight into
# the buffer the sink names. After such a segment the reader takes the next
# header on its own (one short read), so that the next segment can go there too.
SINK_FROM = 32 * 1024

Sink = Callable[[bytes], "memoryview | None"]


class PduReader:
    """Splits a byte stream into PDUs. Digest settings may change between PDUs
    (they take effect after the login phase), so PDUs are pulled one at a time.

    Bytes arrive either by `feed(data)` or, without an intermediate copy, by
    writing into `get_buffer()` and calling `buffer_updated(n)` (the shape of
    asyncio.BufferedProtocol).

    `sink(bhs)`, when set, may name where the data segment of a Data-Out or
    SCSI Command PDU should land (a view of exactly DataSegmentLength bytes):
    large write data then goes from the socket to the task's buffer in one copy.
    """

    def __init__(self, max_data_segment: int = 65536, sink: Sink | None = None) -> None:
        self._buf = bytearray(_MIN_FREE)
        self._start = 0  # first unparsed byte
        self._end = 0  # end of received bytes
        self.header_digest = False
        self.data_digest = False
        self.max_data_segment = max_data_segment
        self.sink = sink
        self._sink: memoryview | None = None  # where the current data segment goes
        self._sunk = 0  # bytes of it received
        self._sink_header = (b"", b"", 0)  # (BHS, AHS, padding + digest bytes still to come)
        self._filling_sink = False  # what the last get_buffer handed out
        self._header_first = False

    def get_buffer(self) -> memoryview:
        """Free space at the tail. Invalidates views handed out by next_pdu."""
        sink = self._sink
        if sink is not None and self._sunk < len(sink):
            self._filling_sink = True
            return sink[self._sunk:]
        self._filling_sink = False
        buf, start, end = self._buf, self._start, self._end
        if start == end:
            self._start = self._end = start = end = 0
            if self._header_first and sink is None:
                return memoryview(buf)[: BHS_LEN + (DIGEST_LEN if self.header_digest else 0)]
        need = max(_LOW_FREE, self._pending_total() - (end - start))
        if len(buf) - end < need:
            if len(buf) - (end - start) >= need:
                buf[: end - start] = buf[start:end]  # same size: safe with views alive
            else:  # a fresh, larger buffer (resizing is refused while views exist)
                bigger = bytearray(max(2 * len(buf), end - start + max(need, _MIN_FREE)))
                bigger[: end - start] = buf[start:end]
                self._buf = buf = bigger
            self._start, self._end = 0, end - start
        return memoryview(buf)[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        if self._filling_sink:
            self._sunk += nbytes
        else:
            self._end += nbytes

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        data = memoryview(data)
        while data:
            view = self.get_buffer()
            taken = min(len(view), len(data))
            view[:taken] = data[:taken]
            self.buffer_updated(taken)
            data = data[taken:]

    @property
    def buffered(self) -> int:
        return self._end - self._start + self._sunk

    def _pending_total(self) -> int:
        """Size of the PDU at the head of the buffer, when its header is in."""
        start, avail = self._start, self._end - self._start
        if self._sink is not None:
            return self._sink_header[2]
        if avail < BHS_LEN:
            return BHS_LEN
        buf = self._buf
        data_len = int.from_bytes(buf[start + 5 : start + 8], "big")
        if data_len > self.max_data_segment:
            return BHS_LEN  # next_pdu will refuse it
        digests = (DIGEST_LEN if self.header_digest else 0) + (DIGEST_LEN if self.data_digest and data_len else 0)
        return BHS_LEN + buf[start + 4] * 4 + data_len + pad_len(data_len) + digests

    def next_pdu(self) -> Pdu | None:
        if self._sink is not None:
            return self._finish_sink()
        buf, pos = self._buf, self._start
        avail = self._end - pos
        if avail < BHS_LEN:
            return None
        ahs_len = buf[pos + 4] * 4
        data_len = int.from_bytes(buf[pos + 5 : pos + 8], "big")
        if data_len > self.max_data_segment:
            raise FramingError(
                f"data segment of {data_len} bytes exceeds our MaxRecvDataSegmentLength {self.max_data_segment}"
            )
        hdig = DIGEST_LEN if self.header_digest else 0
        ddig = DIGEST_LEN if (self.data_digest and data_len) else 0
        data_padded = data_len + pad_len(data_len)
        total = BHS_LEN + ahs_len + hdig + data_padded + ddig
        header_end = pos + BHS_LEN + ahs_len
        if avail < total:
            if data_len >= SINK_FROM and avail >= header_end + hdig - pos and self.sink is not None:
                self._start_sink(pos, header_end, hdig, data_len, data_padded - data_len + ddig)
            return None
        view = memoryview(buf)
        if hdig:
            expected = _u32(buf, header_end)
            if crc32c(view[pos:header_end]) != expected:
                raise FramingError("header digest mismatch")
        bhs = bytes(buf[pos : pos + BHS_LEN])
        ahs = bytes(buf[pos + BHS_LEN : header_end]) if ahs_len else b""
        data_start = header_end + hdig
        data: bytes | memoryview = b""
        if data_len:
            if bhs[0] & 0x3F in ZERO_COPY_OPCODES:
                data = view[data_start : data_start + data_len]
            else:
                data = bytes(buf[data_start : data_start + data_len])
        digest_ok = True
        if ddig:
            expected = _u32(buf, data_start + data_padded)
            digest_ok = crc32c(view[data_start : data_start + data_padded]) == expected
        self._start = pos + total
        self._header_first = False
        return Pdu(bhs, ahs, data, digest_ok)

    def _start_sink(self, pos: int, header_end: int, hdig: int, data_len: int, tail: int) -> None:
        """The header is in, most of the data is not: ask where the data goes."""
        buf = self._buf
        if hdig and crc32c(memoryview(buf)[pos:header_end]) != _u32(buf, header_end):
            raise FramingError("header digest mismatch")
        bhs = bytes(buf[pos : pos + BHS_LEN])
        if bhs[0] & 0x3F not in ZERO_COPY_OPCODES:
            return
        assert self.sink is not None
        sink = self.sink(bhs)
        if sink is None or len(sink) != data_len:
            return
        data_start = header_end + hdig
        have = self._end - data_start  # less than data_len + tail, or the PDU would be whole
        copied = min(have, data_len)
        sink[:copied] = buf[data_start : data_start + copied]
        self._sink, self._sunk = sink, copied
        ahs = bytes(buf[pos + BHS_LEN : header_end])
        self._sink_header = (bhs, ahs, tail)
        self._start = data_start + copied  # what is left here is the padding and digest

    def _finish_sink(self) -> Pdu | None:
        sink = self._sink
        assert sink is not None
        bhs, ahs, tail = self._sink_header
        if self._sunk < len(sink) or self._end - self._start < tail:
            return None
        buf, pos = self._buf, self._start
        digest_ok = True
        if self.data_digest:
            padding = bytes(buf[pos : pos + tail - DIGEST_LEN])
            digest_ok = crc32c(sink, padding) == _u32(buf, pos + tail - DIGEST_LEN)
        self._start = pos + tail
        self._sink, self._sunk = None, 0
        self._header_first = True  # bulk data tends to follow bulk data
        return Pdu(bhs, ahs, sink, digest_ok, in_place=True)


def encode(bhs: bytearray, data: bytes | memoryview = b"", *, header_digest: bool = False,
           data_digest: bool = False) -> list[bytes | bytearray | memoryview]:
    """Frame one outgoing PDU as a list of buffers for writelines (no data copy).
    `bhs` must already hold every field but DataSegmentLength, which is set here."""
    length = len(data)
    bhs[5:8] = length.to_bytes(3, "big")
    parts: list[bytes | bytearray | memoryview] = [bhs]
    if header_digest:
        parts.append(_U32.pack(crc32c(bhs)))
    if length:
        parts.append(data)
        padding = b"\0" * pad_len(length)
        if padding:
            parts.append(padding)
        if data_digest:
            parts.append(_U32.pack(crc32c(data, padding)))
    return parts

