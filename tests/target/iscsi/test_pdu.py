import struct

import google_crc32c
import pytest
from hypothesis import given, settings, strategies as st

from target.iscsi.digest import crc32c
from target.iscsi.pdu import RESERVED_TAG, FramingError, PduReader, encode, lun_from_field, lun_to_field
from tests.support.faults_summary import record
from target.iscsi.wire import data_out, nop_out, scsi_command
from tests.support.pdus import pdus_in_chunks


def test_crc32c_matches_rfc_3720_vectors():
    # RFC 3720 B.4: 32 bytes of zeros -> CRC register bytes aa 36 91 8a on the wire.
    assert struct.pack(">I", crc32c(bytes(32))) == bytes.fromhex("aa36918a")
    assert struct.pack(">I", crc32c(b"\xff" * 32)) == bytes.fromhex("43aba862")
    assert struct.pack(">I", crc32c(bytes(range(32)))) == bytes.fromhex("4e79dd46")


# One request of each opcode the tests frame, all with ITT 0x1234 and (where it has one) CmdSN 77.
_REQUESTS = {
    0x00: lambda: nop_out(itt=0x1234, cmdsn=77),
    0x01: lambda: scsi_command(b"", itt=0x1234, cmdsn=77),
    0x05: lambda: data_out(itt=0x1234, ttt=RESERVED_TAG, offset=0),
}


def _frame(opcode: int, data: bytes, header_digest: bool, data_digest: bool, ahs: bytes = b"") -> bytes:
    bhs = _REQUESTS[opcode]()
    bhs[4] = len(ahs) // 4
    parts = encode(bhs, data, header_digest=False, data_digest=data_digest)
    wire = bytes(parts[0]) + ahs
    if header_digest:
        wire += struct.pack("<I", google_crc32c.value(wire))
    return wire + b"".join(bytes(p) for p in parts[1:])


@given(data=st.binary(max_size=3000), hd=st.booleans(), dd=st.booleans(),
       split=st.integers(min_value=1, max_value=64))
def test_reader_roundtrip_in_any_chunking(data, hd, dd, split):
    record("protocol fuzzing", inputs=1)
    wire = _frame(0x01, data, hd, dd) * 2
    reader = PduReader(max_data_segment=4096)
    reader.header_digest, reader.data_digest = hd, dd
    pdus = pdus_in_chunks(reader, wire, split)
    assert len(pdus) == 2
    for pdu in pdus:
        assert pdu.data == data and pdu.itt == 0x1234 and pdu.cmdsn == 77 and pdu.data_digest_ok
    assert reader.buffered == 0


def test_padding_and_digest_layout():
    wire = _frame(0x05, b"abcde", True, True)
    # 48 BHS + 4 header digest + 5 data + 3 pad + 4 data digest
    assert len(wire) == 48 + 4 + 8 + 4
    assert wire[52:60] == b"abcde\0\0\0"
    assert wire[60:] == struct.pack("<I", google_crc32c.value(b"abcde\0\0\0"))


def test_bad_header_digest_is_fatal_bad_data_digest_is_flagged():
    wire = bytearray(_frame(0x01, b"x" * 10, True, True))
    reader = PduReader()
    reader.header_digest = reader.data_digest = True
    bad_data = bytearray(wire)
    bad_data[-1] ^= 1
    reader.feed(bytes(bad_data))
    assert reader.next_pdu().data_digest_ok is False
    wire[50] ^= 1
    reader.feed(bytes(wire))
    with pytest.raises(FramingError):
        reader.next_pdu()


def test_oversized_data_segment_is_refused_before_buffering():
    bhs = bytearray(48)
    bhs[5:8] = (1 << 24 - 1).to_bytes(3, "big")
    reader = PduReader(max_data_segment=65536)
    reader.feed(bytes(bhs))
    with pytest.raises(FramingError):
        reader.next_pdu()


def test_extended_cdb_from_ahs():
    ahs = struct.pack(">HB", 17, 1) + b"\0" + bytes(range(16, 32))  # length counts reserved byte + 16
    ahs += b"\0" * (-len(ahs) % 4)
    reader = PduReader()
    reader.feed(_frame(0x01, b"", False, False, ahs=ahs))
    pdu = reader.next_pdu()
    assert len(pdu.cdb) == 32


@pytest.mark.parametrize("lun", [0, 1, 255, 256, 16383])
def test_lun_encoding_roundtrip(lun):
    assert lun_from_field(lun_to_field(lun)) == lun


@settings(max_examples=500)
@given(st.binary(min_size=0, max_size=400))
def test_reader_never_fails_except_by_framing_error(blob):
    record("protocol fuzzing", inputs=1)
    reader = PduReader(max_data_segment=256)
    reader.header_digest = True
    reader.feed(blob)
    try:
        while reader.next_pdu() is not None:
            pass
    except FramingError:
        pass


def test_reader_grows_for_large_pdus_and_reuses_its_buffer():
    big = bytes(range(256)) * 4096  # 1 MiB, larger than the initial receive buffer
    wire = _frame(0x05, big, False, False) + _frame(0x00, b"nop", False, False)
    reader = PduReader(max_data_segment=2 << 20)
    pos = 0
    while pos < len(wire):  # as recv_into would deliver it: at most 100 kB, at most what fits
        view = reader.get_buffer()
        chunk = wire[pos:pos + min(100_000, len(view))]
        view[: len(chunk)] = chunk
        reader.buffer_updated(len(chunk))
        pos += len(chunk)
    data_out = reader.next_pdu()
    assert bytes(data_out.data) == big  # a view into the receive buffer, valid until the next get_buffer
    nop = reader.next_pdu()
    assert nop.data == b"nop" and isinstance(nop.data, bytes)
    assert reader.next_pdu() is None and reader.buffered == 0
