"""The `rbd export-diff` file format (v1), as Ceph's doc/dev/rbd-diff.rst describes it, written
by the exports from the same changed ranges and reads as the VHD exports, and checked by verify.

    "rbd diff v1\\n"
    metadata: 'f' le32 len + name (from snapshot), 't' le32 len + name (to snapshot), 's' le64 size
    data:     'w' le64 offset, le64 length, data   |   'z' le64 offset, le64 length (zeros)
    end:      'e'

`rbd import-diff FILE POOL/IMAGE` applies it: the image must hold the 'f' snapshot (none for a
full diff), is resized to 's', and takes the 't' snapshot when done. So a chain of these files
rebuilds the disk in a fresh image, snapshot by snapshot.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HEADER = b"rbd diff v1\n"
_LE32, _LE64, _EXTENT = struct.Struct("<I"), struct.Struct("<Q"), struct.Struct("<QQ")
CHECK_CHUNK = 4 << 20


@dataclass(frozen=True, slots=True)
class DiffInfo:
    from_snap: str | None
    to_snap: str | None
    size: int | None
    data_bytes: int  # in 'w' records


class RbdDiffWriter:
    """Where an export writes a snapshot's changed ranges, in increasing order (the calls an
    export makes of a store: write, flush, close). Zeros become 'z' records; `flush` ends the
    file (the 'e' record) and makes it durable."""

    def __init__(self, path: Path, size: int, to_snap: str, from_snap: str | None = None) -> None:
        self.size = size
        self._file: BinaryIO = open(path, "xb")
        self._ended = False
        self._file.write(HEADER)
        if from_snap is not None:
            self._name(b"f", from_snap)
        self._name(b"t", to_snap)
        self._file.write(b"s" + _LE64.pack(size))

    def _name(self, tag: bytes, name: str) -> None:
        encoded = name.encode()
        self._file.write(tag + _LE32.pack(len(encoded)) + encoded)

    def write(self, offset: int, data: bytes | bytearray | memoryview, *, durable: bool = False) -> None:
        if self._ended:
            raise ValueError("rbd diff: write after the end record")
        if data == bytes(len(data)):
            self._file.write(b"z" + _EXTENT.pack(offset, len(data)))
        else:
            self._file.write(b"w" + _EXTENT.pack(offset, len(data)))
            self._file.write(data)

    def flush(self) -> None:
        if not self._ended:
            self._ended = True
            self._file.write(b"e")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def check(path: str | os.PathLike[str]) -> tuple[DiffInfo | None, list[str]]:
    """Read the whole file as `rbd import-diff` would; (what it holds, findings: empty = sound)."""
    findings: list[str] = []
    from_snap = to_snap = size = None
    data_bytes = 0
    with open(path, "rb") as handle:
        if handle.read(len(HEADER)) != HEADER:
            return None, [f"{path}: not an rbd diff v1 file (header)"]
        in_data = False
        while True:
            tag = handle.read(1)
            if not tag:
                findings.append(f"{path}: ends without its end record (cut short?)")
                break
            if tag == b"e":
                if handle.read(1):
                    findings.append(f"{path}: bytes after the end record")
                break
            if tag in (b"f", b"t"):
                name = _read_name(handle)
                if name is None or in_data:
                    findings.append(f"{path}: bad snapshot name record at byte {handle.tell()}")
                    break
                from_snap, to_snap = (name, to_snap) if tag == b"f" else (from_snap, name)
            elif tag == b"s":
                raw = handle.read(_LE64.size)
                if len(raw) < _LE64.size or in_data:
                    findings.append(f"{path}: bad size record at byte {handle.tell()}")
                    break
                (size,) = _LE64.unpack(raw)
            elif tag in (b"w", b"z"):
                in_data = True
                raw = handle.read(_EXTENT.size)
                if len(raw) < _EXTENT.size:
                    findings.append(f"{path}: cut short in a data record at byte {handle.tell()}")
                    break
                offset, length = _EXTENT.unpack(raw)
                if size is None or offset + length > size:
                    findings.append(f"{path}: data at {offset}+{length} past the image's size {size}")
                    break
                if tag == b"w":
                    if not _skip(handle, length):
                        findings.append(f"{path}: cut short in the data at {offset}+{length}")
                        break
                    data_bytes += length
            else:
                findings.append(f"{path}: unknown record {tag!r} at byte {handle.tell() - 1}")
                break
    if to_snap is None or size is None:
        findings.append(f"{path}: no 't' (to snapshot) or 's' (size) record")
    return DiffInfo(from_snap, to_snap, size, data_bytes), findings


def _read_name(handle: BinaryIO) -> str | None:
    raw = handle.read(_LE32.size)
    if len(raw) < _LE32.size:
        return None
    (length,) = _LE32.unpack(raw)
    name = handle.read(length)
    return name.decode(errors="replace") if len(name) == length else None


def _skip(handle: BinaryIO, length: int) -> bool:
    """Read past `length` bytes of data (read, not seek: a file cut short is found)."""
    while length:
        got = len(handle.read(min(CHECK_CHUNK, length)))
        if not got:
            return False
        length -= got
    return True
