"""Hand-packed initiator PDUs for driving the sans-IO core in unit tests."""

from __future__ import annotations

import struct

from target.iscsi.pdu import PduReader


def login_pdu(keys: list[str], *, csg: int = 0, nsg: int = 1, transit: bool = True, itt: int = 1,
              cmdsn: int = 1, tsih: int = 0, isid: bytes = b"\x40\0\0\x01\0\0", cont: bool = False) -> bytes:
    data = b"".join(k.encode() + b"\0" for k in keys)
    bhs = bytearray(48)
    bhs[0] = 0x43
    bhs[1] = (0x80 if transit else 0) | (0x40 if cont else 0) | csg << 2 | (nsg if transit else 0)
    bhs[5:8] = len(data).to_bytes(3, "big")
    bhs[8:14] = isid
    struct.pack_into(">H", bhs, 14, tsih)
    struct.pack_into(">I", bhs, 16, itt)
    struct.pack_into(">I", bhs, 24, cmdsn)
    return bytes(bhs) + data + b"\0" * (-len(data) % 4)


def scsi_pdu(cdb: bytes, *, itt: int, cmdsn: int, read: bool = False, write: bool = False,
             length: int = 0, data: bytes = b"", lun: int = 0, immediate: bool = False) -> bytes:
    bhs = bytearray(48)
    bhs[0] = 0x01 | (0x40 if immediate else 0)
    bhs[1] = 0x80 | (0x40 if read else 0) | (0x20 if write else 0) | 1
    bhs[5:8] = len(data).to_bytes(3, "big")
    bhs[9] = lun
    struct.pack_into(">III", bhs, 16, itt, length, cmdsn)
    bhs[32:32 + len(cdb)] = cdb
    return bytes(bhs) + data + b"\0" * (-len(data) % 4)


def data_out_pdu(*, itt: int, ttt: int, offset: int, data: bytes, final: bool = True, datasn: int = 0) -> bytes:
    bhs = bytearray(48)
    bhs[0], bhs[1] = 0x05, 0x80 if final else 0
    bhs[5:8] = len(data).to_bytes(3, "big")
    struct.pack_into(">II", bhs, 16, itt, ttt)
    struct.pack_into(">II", bhs, 36, datasn, offset)
    return bytes(bhs) + data + b"\0" * (-len(data) % 4)


def parse_keys(data: bytes) -> dict[str, str]:
    return dict(item.decode().split("=", 1) for item in data.split(b"\0") if item)


def pdus_in_chunks(reader: PduReader, wire: bytes | bytearray, split: int) -> list:
    """Feed `wire` `split` bytes at a time, collecting every PDU as soon as it is whole."""
    pdus = []
    for i in range(0, len(wire), split):
        reader.feed(wire[i:i + split])
        while (pdu := reader.next_pdu()) is not None:
            pdus.append(pdu)
    return pdus


def responses(buffers) -> list:
    reader = PduReader(max_data_segment=1 << 24)
    reader.feed(b"".join(bytes(b) for b in buffers))
    out = []
    while (pdu := reader.next_pdu()) is not None:
        out.append(pdu)
    return out
