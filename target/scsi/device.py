"""A SCSI target device: the LUN map behind one iSCSI target (SAM-5 4.6).

Routes commands to logical units and answers what belongs to the device
rather than a unit: REPORT LUNS, and commands to a LUN that does not exist.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Callable

from target.scsi import pr, sbc, spc  # noqa: F401  (registers the command handlers)
from target.scsi import sense as s
from target.scsi.cdb import be, need
from target.scsi.claims import ClaimRefused
from target.scsi.lu import LogicalUnit
from target.scsi.nexus import Nexus
from target.scsi.registry import Access, Command, command
from target.stores.base import StoreError

log = logging.getLogger("bootsrv.scsi")

REPORT_LUNS = 0xA0
_WRITE_OPCODES = frozenset({0x2A, 0xAA, 0x8A})
_LARGE_TRANSFER_OPCODES = frozenset({0x28, 0xA8, 0x88}) | _WRITE_OPCODES
THREAD_TRANSFER_BLOCKS = 256  # 128 KiB: below this a thread hop costs more than it saves


@command(REPORT_LUNS, access=Access.NONE, reports_ua=False, usage="oo00ff000000ffffffff0007")
def _report_luns_entry(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    """Listed for REPORT SUPPORTED OPERATION CODES; ScsiDevice answers it before any unit."""
    raise s.CheckCondition(s.INVALID_COMMAND_OPERATION_CODE)


def _store_call(unit: LogicalUnit, capability: str, holder: str) -> None:
    """A store's optional claim/release (stores that lack them need no claim)."""
    call = getattr(unit.store, capability, None)
    if call is not None:
        call(holder)


def lun_entry(lun: int) -> bytes:
    if lun < 256:
        return bytes((0, lun)) + bytes(6)
    return bytes((0x40 | (lun >> 8), lun & 0xFF)) + bytes(6)


@dataclass(slots=True)
class ScsiDevice:
    units: list[LogicalUnit]

    def execute(self, lun: int, cdb: bytes, data_out: bytes | bytearray | None, nexus: Nexus,
                zero_copy: bool = False, nowait: bool = False,
                done: Callable[[s.ScsiResult], None] | None = None) -> s.ScsiResult:
        """`nowait`: a read that would wait for the disk raises WouldBlock (see Command).
        `done`: the caller takes a later answer; PENDING is returned when one will come (see Command)."""
        if cdb and cdb[0] == REPORT_LUNS:
            try:
                return self._report_luns(cdb)
            except s.CheckCondition as cc:
                return cc.result()
        if 0 <= lun < len(self.units):
            return self.units[lun].execute(Command(cdb, data_out, nexus, zero_copy, nowait, done))
        if cdb and cdb[0] == spc.INQUIRY and len(cdb) >= 6 and not cdb[1] & 0x01:
            # No unit here: peripheral qualifier 3, device type 1Fh (SPC-4 6.6.2).
            return s.ScsiResult(data=(b"\x7f" + spc.standard_inquiry(self.units[0])[1:] if self.units
                                      else b"\x7f" + bytes(35))[: be(cdb, 3, 2)])
        if cdb and cdb[0] == spc.REQUEST_SENSE:
            return s.ScsiResult(data=s.fixed_sense(*s.LOGICAL_UNIT_NOT_SUPPORTED)[: cdb[4] if len(cdb) > 4 else 0])
        return s.check_condition(s.LOGICAL_UNIT_NOT_SUPPORTED)

    def may_block(self, lun: int, cdb: bytes, zero_copy: bool = False) -> bool:
        """Commands worth a worker thread: those that wait for the disk (fsync,
        FUA) and large copies, which then overlap with the event loop's socket
        work on another core (pread/pwrite release the GIL). A zero-copy read
        copies nothing: it stays on the loop, and one whose data is not in the
        page cache raises WouldBlock there and moves to a thread."""
        if not cdb:
            return False
        if 0 <= lun < len(self.units) and self.units[lun].submits_io:
            return self.units[lun].may_block(cdb)  # submitted I/O never blocks; the rest always may
        if 0 <= lun < len(self.units) and self.units[lun].may_block(cdb):
            return True
        if cdb[0] in _LARGE_TRANSFER_OPCODES and len(cdb) >= 10 and 0 <= lun < len(self.units):
            write = cdb[0] in _WRITE_OPCODES
            if write and cdb[1] & 0x08:
                return True
            lba, blocks = sbc.transfer_range(cdb)
            store = self.units[lun].store
            if not write and zero_copy and blocks >= sbc.ZERO_COPY_BLOCKS:
                return False
            if blocks >= THREAD_TRANSFER_BLOCKS:
                return True
            # A write that makes a VHD allocate a block waits for an fdatasync.
            return write and store.write_may_block(lba * 512, blocks * 512)
        return False

    def nexus_added(self, nexus: Nexus) -> None:
        for unit in self.units:
            unit.nexus_added(nexus)

    def nexus_removed(self, nexus: Nexus) -> None:
        for unit in self.units:
            unit.nexus_removed(nexus)

    # ---- stores served by one server at a time (an RBD image: target/stores/rbd/lock.py) ----

    def claims(self) -> bool:
        """Whether a login must claim this device's stores before its session starts."""
        return any(getattr(unit.store, "claims", False) for unit in self.units)

    def claim(self, holder: str) -> ClaimRefused | None:
        """Blocking (a worker thread): claim every unit's store for `holder` (a session), or
        none of them; returns why not (another server writes one, and where it listens), or None."""
        taken: list[LogicalUnit] = []
        for unit in self.units:
            try:
                _store_call(unit, "claim", holder)
            except StoreError as exc:
                for done in taken:
                    self._release_unit(done, holder)
                return ClaimRefused(str(exc), getattr(exc, "moved_to", ""))
            taken.append(unit)
        return None

    def release(self, holder: str) -> None:
        """Blocking (a worker thread): the session `holder` ended."""
        for unit in self.units:
            self._release_unit(unit, holder)

    @staticmethod
    def _release_unit(unit: LogicalUnit, holder: str) -> None:
        try:
            _store_call(unit, "release", holder)
        except StoreError as exc:
            log.error("%s: %s", unit.name, exc)

    def reset(self, lun: int | None) -> None:
        """LOGICAL UNIT RESET of one unit, or a target reset (lun None)."""
        for index, unit in enumerate(self.units):
            if lun is None or lun == index:
                unit.reset()

    def check_capacity(self) -> None:
        for unit in self.units:
            unit.check_capacity()

    def _report_luns(self, cdb: bytes) -> s.ScsiResult:
        need(cdb, 12)
        if cdb[2] not in (0x00, 0x01, 0x02):  # SELECT REPORT: all, well-known, or both
            raise s.CheckCondition(s.INVALID_FIELD_IN_CDB, field_pointer=2)
        allocation = be(cdb, 6, 4)
        if allocation < 16:
            raise s.CheckCondition(s.INVALID_FIELD_IN_CDB, field_pointer=6)
        entries = b"".join(lun_entry(i) for i in range(len(self.units)))
        payload = struct.pack(">I", len(entries)) + bytes(4) + entries
        return s.ScsiResult(data=payload[:allocation])
