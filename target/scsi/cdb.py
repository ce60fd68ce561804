"""CDB field helpers shared by the command sets."""

from __future__ import annotations

from target.scsi import sense as s


def need(cdb: bytes, length: int) -> None:
    if len(cdb) < length:
        raise s.CheckCondition(s.INVALID_FIELD_IN_CDB)


def be(cdb: bytes, start: int, length: int) -> int:
    return int.from_bytes(cdb[start : start + length], "big")


def truncate(data: bytes | bytearray, allocation_length: int) -> bytes | bytearray:
    """Data-in commands return at most the allocation length (SPC-4 4.2.5.6)."""
    return data[:allocation_length]


def invalid_field(byte: int) -> s.CheckCondition:
    return s.CheckCondition(s.INVALID_FIELD_IN_CDB, field_pointer=byte)
