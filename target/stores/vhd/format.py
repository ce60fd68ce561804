"""VHD on-disk structures (Microsoft "Virtual Hard Disk Image Format
Specification"): the footer, the dynamic disk header, parent locators, CHS
geometry and checksums. All fields are big-endian. No I/O here."""

from __future__ import annotations

import struct
import time
import uuid
from dataclasses import dataclass, field, replace

from target.stores.errors import FormatError

SECTOR = 512
FOOTER_SIZE = 512
HEADER_SIZE = 1024
FOOTER_COOKIE = b"conectix"
HEADER_COOKIE = b"cxsparse"
NO_OFFSET = 0xFFFFFFFFFFFFFFFF
UNALLOCATED = 0xFFFFFFFF
FIXED, DYNAMIC, DIFFERENCING = 2, 3, 4
TYPE_NAMES = {FIXED: "fixed", DYNAMIC: "dynamic", DIFFERENCING: "differencing"}
MAX_SIZE = 2040 << 30
DEFAULT_BLOCK_SIZE = 2 << 20
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z
MAX_GEOMETRY_SECTORS = 65535 * 16 * 255
# Creator application: "win " marks Hyper-V's convention that current_size, not
# the CHS geometry, is the disk's size; qemu and libvhdi both honour it for it.
CREATOR_APP = b"win "
CREATOR_VERSION = 0x000A0000
CREATOR_OS = b"Wi2k"
# Creators whose images qemu sizes by CHS geometry (qemu's vpc driver; we match it).
_CURRENT_SIZE_CREATORS = (b"win ", b"qem2", b"d2v ", b"CTXS", b"tap\0")

_FOOTER = struct.Struct(">8sIIQI4sI4sQQHBBII16sB427s")
_HEADER = struct.Struct(">8sQQIIII16sI4s512s192s256s")
_LOCATOR = struct.Struct(">4sIIIQ")


class VhdFormatError(FormatError):
    """Not a VHD we can serve, with the reason in words an admin can act on. A
    FormatError (a StoreError), not a ValueError: one raised during I/O (a parked
    disk reopened, its parent gone) is a medium error, not a malformed CDB."""


def checksum(data: bytes | bytearray, field_offset: int) -> int:
    """One's complement of the byte sum, the checksum field counted as zero."""
    total = sum(data) - sum(data[field_offset:field_offset + 4])
    return ~total & 0xFFFFFFFF


def geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) by the specification's algorithm."""
    total = min(size // SECTOR, MAX_GEOMETRY_SECTORS)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def vhd_timestamp(unix: float | None = None) -> int:
    return max(int((time.time() if unix is None else unix) - VHD_EPOCH), 0) & 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Footer:
    disk_type: int
    current_size: int
    original_size: int = 0
    data_offset: int = NO_OFFSET
    timestamp: int = 0
    creator_app: bytes = CREATOR_APP
    creator_version: int = CREATOR_VERSION
    creator_os: bytes = CREATOR_OS
    geometry: tuple[int, int, int] = (0, 0, 0)
    uuid: bytes = b"\0" * 16
    saved_state: int = 0
    features: int = 2
    version: int = 0x00010000

    @classmethod
    def new(cls, disk_type: int, size: int, data_offset: int = NO_OFFSET) -> "Footer":
        return cls(disk_type, size, size, data_offset, vhd_timestamp(), geometry=geometry(size),
                   uuid=uuid.uuid4().bytes)

    def resized(self, size: int) -> "Footer":
        # Original Size is "informational" in the spec, but libvhdi reports it as the disk's
        # size: a grown disk that kept it would read as its old size there.
        return replace(self, original_size=size, current_size=size, geometry=geometry(size))

    def pack(self) -> bytes:
        cyl, heads, spt = self.geometry
        raw = bytearray(_FOOTER.pack(FOOTER_COOKIE, self.features, self.version, self.data_offset,
                                     self.timestamp, self.creator_app, self.creator_version, self.creator_os,
                                     self.original_size, self.current_size, cyl, heads, spt, self.disk_type, 0,
                                     self.uuid, self.saved_state, b"\0" * 427))
        struct.pack_into(">I", raw, 64, checksum(raw, 64))
        return bytes(raw)

    @classmethod
    def unpack(cls, raw: bytes, where: str) -> "Footer":
        # Some old creators wrote a 511-byte footer; it is read at EOF-512 then too.
        if len(raw) < 511 or raw[:8] != FOOTER_COOKIE:
            raise VhdFormatError(f"{where}: no VHD footer (cookie 'conectix' missing)")
        raw = raw.ljust(512, b"\0")
        (_, features, version, data_offset, timestamp, app, app_version, host, original, current, cyl, heads,
         spt, disk_type, stored_sum, disk_uuid, saved, _) = _FOOTER.unpack(raw)
        if stored_sum != checksum(raw, 64):
            raise VhdFormatError(f"{where}: footer checksum mismatch")
        if disk_type not in TYPE_NAMES:
            raise VhdFormatError(f"{where}: disk type {disk_type} is not fixed, dynamic or differencing")
        return cls(disk_type, current, original, data_offset, timestamp, app, app_version, host,
                   (cyl, heads, spt), disk_uuid, saved, features, version)

    @property
    def virtual_size(self) -> int:
        """The size readers agree on: CHS-sized for creators that mean CHS (as qemu decides)."""
        cyl, heads, spt = self.geometry
        chs = cyl * heads * spt * SECTOR
        if self.creator_app in _CURRENT_SIZE_CREATORS or chs // SECTOR == MAX_GEOMETRY_SECTORS or not chs:
            return self.current_size
        return chs


@dataclass(frozen=True, slots=True)
class Locator:
    code: bytes  # b"W2ku" absolute, b"W2ru" relative, others kept as they are
    data_space: int
    data_length: int
    data_offset: int

    def pack(self) -> bytes:
        return _LOCATOR.pack(self.code, self.data_space, self.data_length, 0, self.data_offset)


@dataclass(frozen=True, slots=True)
class DynamicHeader:
    table_offset: int
    max_table_entries: int
    block_size: int = DEFAULT_BLOCK_SIZE
    parent_uuid: bytes = b"\0" * 16
    parent_timestamp: int = 0
    parent_name: str = ""
    locators: tuple[Locator, ...] = field(default=())
    data_offset: int = NO_OFFSET
    version: int = 0x00010000

    def pack(self) -> bytes:
        name = self.parent_name.encode("utf-16-be")[:512].ljust(512, b"\0")
        locators = b"".join(loc.pack() for loc in self.locators[:8]).ljust(8 * 24, b"\0")
        raw = bytearray(_HEADER.pack(HEADER_COOKIE, self.data_offset, self.table_offset, self.version,
                                     self.max_table_entries, self.block_size, 0, self.parent_uuid,
                                     self.parent_timestamp, b"\0" * 4, name, locators, b"\0" * 256))
        struct.pack_into(">I", raw, 36, checksum(raw, 36))
        return bytes(raw)

    @classmethod
    def unpack(cls, raw: bytes, where: str) -> "DynamicHeader":
        if len(raw) < HEADER_SIZE or raw[:8] != HEADER_COOKIE:
            raise VhdFormatError(f"{where}: no dynamic disk header (cookie 'cxsparse' missing)")
        (_, data_offset, table_offset, version, entries, block_size, stored_sum, parent_uuid, parent_ts, _,
         name, locator_bytes, _) = _HEADER.unpack(raw[:HEADER_SIZE])
        if stored_sum != checksum(raw[:HEADER_SIZE], 36):
            raise VhdFormatError(f"{where}: dynamic header checksum mismatch")
        if block_size < SECTOR or block_size & (block_size - 1):
            raise VhdFormatError(f"{where}: block size {block_size} is not a power of two")
        locators = []
        for i in range(8):
            code, space, length, _, offset = _LOCATOR.unpack_from(locator_bytes, i * 24)
            if code != b"\0\0\0\0":
                locators.append(Locator(code, space, length, offset))
        parent = name.decode("utf-16-be", errors="replace").split("\0", 1)[0]
        return cls(table_offset, entries, block_size, parent_uuid, parent_ts, parent, tuple(locators),
                   data_offset, version)

    @property
    def bitmap_size(self) -> int:
        """Sector bitmap in front of every block, padded to whole sectors."""
        nbytes = -(-(self.block_size // SECTOR) // 8)
        return -(-nbytes // SECTOR) * SECTOR


def bat_bytes(entries: int) -> int:
    """Space the BAT takes on disk: 4 bytes an entry, padded to sectors."""
    return -(-entries * 4 // SECTOR) * SECTOR
