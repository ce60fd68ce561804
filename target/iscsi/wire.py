"""The writer side of the iSCSI wire format: one builder per PDU (RFC 7143 section 11).

pdu.py is the reader side (PduReader, and `Pdu` whose properties read the
fields of a received header) and frames outgoing PDUs (`encode`). This module
is the one place that knows where the fields of an outgoing header go.

Invariants:
- Every builder returns a fresh 48-byte `bytearray` BHS with every field set
  but DataSegmentLength (bytes 5..7), which `encode` sets from the data it frames.
- Each builder is one allocation and one precompiled `pack_into`: the Data-In
  and R2T builders run once per PDU on the READ and WRITE paths.
- Sequence numbers are passed already reduced to 32 bits (the connection keeps
  them so); builders do no arithmetic.

The target-side builders (what the server sends) come first, the initiator-side
ones (what tests, fuzzers and benchmarks send) after them.
"""

from __future__ import annotations

import struct

from target.iscsi.pdu import BHS_LEN, RESERVED_TAG, Opcode, encode

# Opcode, flags, byte 2, byte 3, (AHS and data lengths), LUN, ITT, bytes 20, 24, 28, 32, 36, 40, 44.
# Every PDU but the login ones has this shape (11.2.1); what bytes 2, 3 and 20..47 mean varies.
_COMMON = struct.Struct(">BBBB4x8s8I")
# Login Request / Response (11.12, 11.13): ISID and TSIH in place of the LUN.
_LOGIN = struct.Struct(">BBBB4x6sHIHxxIIIBB10x")
NO_LUN = bytes(8)

_DATA_IN = int(Opcode.DATA_IN)
_R2T = int(Opcode.R2T)
_SCSI_RESPONSE = int(Opcode.SCSI_RESPONSE)
_NOP_IN = int(Opcode.NOP_IN)
_REJECT = int(Opcode.REJECT)
_TEXT_RESPONSE = int(Opcode.TEXT_RESPONSE)
_LOGOUT_RESPONSE = int(Opcode.LOGOUT_RESPONSE)
_TMF_RESPONSE = int(Opcode.TASK_MGMT_RESPONSE)
_LOGIN_RESPONSE = int(Opcode.LOGIN_RESPONSE)

_pack_common = _COMMON.pack_into
_pack_login = _LOGIN.pack_into

# ---- target side ----------------------------------------------------------


def data_in(flags: int, status: int, lun: bytes, itt: int, statsn: int, expcmdsn: int, maxcmdsn: int,
            datasn: int, offset: int, residual: int) -> bytearray:
    """SCSI Data-In (11.7). StatSN, status and residual count only with the S bit (0x01)."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _DATA_IN, flags, 0, status, lun, itt, RESERVED_TAG, statsn, expcmdsn, maxcmdsn,
                 datasn, offset, residual)
    return bhs


def r2t(lun: bytes, itt: int, ttt: int, statsn: int, expcmdsn: int, maxcmdsn: int, r2tsn: int, offset: int,
        length: int) -> bytearray:
    """Ready To Transfer (11.8): ask for `length` bytes at `offset`."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _R2T, 0x80, 0, 0, lun, itt, ttt, statsn, expcmdsn, maxcmdsn, r2tsn, offset, length)
    return bhs


def scsi_response(flags: int, status: int, itt: int, statsn: int, expcmdsn: int, maxcmdsn: int,
                  expdatasn: int, residual: int) -> bytearray:
    """SCSI Response (11.4), response 0 (command completed at target). `flags`: the
    residual bits (0x04 overflow, 0x02 underflow) besides F, which is always set."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _SCSI_RESPONSE, 0x80 | flags, 0, status, NO_LUN, itt, 0, statsn, expcmdsn, maxcmdsn,
                 expdatasn, 0, residual)
    return bhs


def nop_in(lun: bytes, itt: int, ttt: int, statsn: int, expcmdsn: int, maxcmdsn: int) -> bytearray:
    """NOP-In (11.19): an answer (ITT of the NOP-Out, TTT reserved) or a ping (ITT reserved)."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _NOP_IN, 0x80, 0, 0, lun, itt, ttt, statsn, expcmdsn, maxcmdsn, 0, 0, 0)
    return bhs


def reject(reason: int, statsn: int, expcmdsn: int, maxcmdsn: int) -> bytearray:
    """Reject (11.17); its data segment is the rejected PDU's header."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _REJECT, 0x80, reason, 0, NO_LUN, RESERVED_TAG, 0, statsn, expcmdsn, maxcmdsn, 0, 0, 0)
    return bhs


def text_response(final: bool, lun: bytes, itt: int, ttt: int, statsn: int, expcmdsn: int,
                  maxcmdsn: int) -> bytearray:
    """Text Response (11.11): not final (C bit) when more text waits under `ttt`."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _TEXT_RESPONSE, 0x80 if final else 0x40, 0, 0, lun, itt, ttt, statsn, expcmdsn,
                 maxcmdsn, 0, 0, 0)
    return bhs


def logout_response(response: int, itt: int, statsn: int, expcmdsn: int, maxcmdsn: int) -> bytearray:
    """Logout Response (11.15), Time2Wait and Time2Retain 0 (ERL 0 keeps nothing)."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _LOGOUT_RESPONSE, 0x80, response, 0, NO_LUN, itt, 0, statsn, expcmdsn, maxcmdsn, 0, 0, 0)
    return bhs


def tmf_response(response: int, itt: int, statsn: int, expcmdsn: int, maxcmdsn: int) -> bytearray:
    """Task Management Function Response (11.6)."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, _TMF_RESPONSE, 0x80, response, 0, NO_LUN, itt, 0, statsn, expcmdsn, maxcmdsn, 0, 0, 0)
    return bhs


def login_response(flags: int, isid: bytes, tsih: int, itt: int, statsn: int, expcmdsn: int, maxcmdsn: int,
                   status: int) -> bytearray:
    """Login Response (11.13), versions 0. `status`: Status-Class << 8 | Status-Detail."""
    bhs = bytearray(BHS_LEN)
    _pack_login(bhs, 0, _LOGIN_RESPONSE, flags, 0, 0, isid, tsih, itt, 0, statsn, expcmdsn, maxcmdsn,
                status >> 8, status & 0xFF)
    return bhs


# ---- initiator side (tests, fuzzers, benchmarks) --------------------------

DEFAULT_ISID = bytes((0x40, 0, 0, 1, 0, 0))  # random qualifier format


def lun_field(lun: int) -> bytes:
    """An 8-byte LUN field, peripheral addressing (what the tests' initiators send)."""
    return bytes((0, lun, 0, 0, 0, 0, 0, 0))


def request(opcode: int, flags: int, itt: int, field20: int, cmdsn: int, *, immediate: bool = False,
             lun: bytes = NO_LUN, expstatsn: int = 0, field32: int = 0, field36: int = 0, field40: int = 0,
             field44: int = 0) -> bytearray:
    """Any initiator request of the common shape: the typed builders below, and
    opcodes no builder has (what a test sends to see it refused)."""
    bhs = bytearray(BHS_LEN)
    _pack_common(bhs, 0, opcode | (0x40 if immediate else 0), flags, 0, 0, lun, itt, field20, cmdsn, expstatsn,
                 field32, field36, field40, field44)
    return bhs


def scsi_command(cdb: bytes, *, itt: int, cmdsn: int, read: bool = False, write: bool = False, length: int = 0,
                 lun: int = 0, immediate: bool = False, final: bool = True, attr: int = 1,
                 expstatsn: int = 0) -> bytearray:
    """SCSI Command (11.3) with a CDB of up to 16 bytes; `attr` 1 is SIMPLE."""
    flags = (0x80 if final else 0) | (0x40 if read else 0) | (0x20 if write else 0) | attr
    bhs = request(Opcode.SCSI_COMMAND, flags, itt, length, cmdsn, immediate=immediate, lun=lun_field(lun),
                   expstatsn=expstatsn)
    bhs[32:32 + len(cdb)] = cdb
    return bhs


def data_out(*, itt: int, ttt: int, offset: int, datasn: int = 0, final: bool = True, lun: int = 0,
             expstatsn: int = 0) -> bytearray:
    """SCSI Data-Out (11.7); `ttt` is the R2T's, or RESERVED_TAG for unsolicited data."""
    return request(Opcode.DATA_OUT, 0x80 if final else 0, itt, ttt, 0, lun=lun_field(lun), expstatsn=expstatsn,
                    field36=datasn, field40=offset)


def nop_out(*, itt: int, cmdsn: int, ttt: int = RESERVED_TAG, immediate: bool = False) -> bytearray:
    """NOP-Out (11.18): a ping (ITT set, TTT reserved) or the answer to ours (ITT reserved)."""
    return request(Opcode.NOP_OUT, 0x80, itt, ttt, cmdsn, immediate=immediate)


def text_request(*, itt: int, cmdsn: int, ttt: int = RESERVED_TAG, final: bool = True,
                 immediate: bool = False) -> bytearray:
    """Text Request (11.10); `ttt` continues a long answer."""
    return request(Opcode.TEXT_REQUEST, 0x80 if final else 0, itt, ttt, cmdsn, immediate=immediate)


def logout_request(*, itt: int, cmdsn: int, reason: int = 0, cid: int = 0, immediate: bool = False) -> bytearray:
    """Logout Request (11.14); reason 0 closes the session."""
    return request(Opcode.LOGOUT_REQUEST, 0x80 | reason, itt, cid << 16, cmdsn, immediate=immediate)


def tmf_request(function: int, *, itt: int, cmdsn: int, referenced_itt: int = RESERVED_TAG, ref_cmdsn: int = 0,
                lun: int = 0, immediate: bool = True, expstatsn: int = 0) -> bytearray:
    """Task Management Function Request (11.5)."""
    return request(Opcode.TASK_MGMT_REQUEST, 0x80 | function, itt, referenced_itt, cmdsn, immediate=immediate,
                    lun=lun_field(lun), expstatsn=expstatsn, field32=ref_cmdsn)


def login_request(*, csg: int, nsg: int, transit: bool = True, cont: bool = False, itt: int = 1, cmdsn: int = 1,
                  tsih: int = 0, isid: bytes = DEFAULT_ISID, cid: int = 0, expstatsn: int = 0) -> bytearray:
    """Login Request (11.12), always immediate, versions 0."""
    flags = (0x80 if transit else 0) | (0x40 if cont else 0) | csg << 2 | (nsg if transit else 0)
    bhs = bytearray(BHS_LEN)
    _pack_login(bhs, 0, Opcode.LOGIN_REQUEST | 0x40, flags, 0, 0, isid, tsih, itt, cid, cmdsn, expstatsn, 0, 0, 0)
    return bhs


def frame(bhs: bytearray, data: bytes = b"") -> bytes:
    """One PDU as bytes, without digests (what the sans-IO tests feed)."""
    return b"".join(encode(bhs, data))
