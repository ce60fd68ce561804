"""The command table: which handler runs an opcode and how reservations and
unit attentions treat it. Command sets register with @command."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Callable

from target.scsi.nexus import LOCAL, Nexus
from target.scsi.sense import ScsiResult

if TYPE_CHECKING:
    from target.scsi.lu import LogicalUnit


class Access(Enum):
    """What a command does to the medium, for reservation conflicts (SPC-4 5.12.1)."""

    NONE = "none"  # never conflicts (INQUIRY, REPORT LUNS, TEST UNIT READY, PR IN/OUT ...)
    READ = "read"  # conflicts under exclusive-access reservations
    WRITE = "write"  # conflicts under write-exclusive and exclusive-access reservations


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs a setattr call per field
class Command:
    cdb: bytes
    data: bytes | bytearray | memoryview | None = None  # data-out, if any
    nexus: Nexus = LOCAL
    # The transport can send file slices (sendfile) for large reads: see target.stores.pieces.
    zero_copy: bool = False
    # On the event loop: a read that would wait for the disk raises WouldBlock instead.
    nowait: bool = False
    # Set by a caller that can take the answer later: a handler whose store submits I/O
    # (target.stores.submit) starts it, returns PENDING, and `done` gets the result once,
    # on the store's completion thread.
    done: Callable[[ScsiResult], None] | None = None


# What a handler returns when it submitted its I/O: the result goes to Command.done.
PENDING = ScsiResult()


Handler = Callable[["LogicalUnit", Command], ScsiResult]


@dataclass(frozen=True, slots=True)
class Entry:
    handler: Handler
    access: Access
    may_block: bool  # waits on the disk (fsync): worth a worker thread
    submits: bool  # submits its I/O when the store can (stays on the event loop then)
    reports_ua: bool  # False for INQUIRY, REPORT LUNS, REQUEST SENSE (SAM-5 5.14)
    service_actions: tuple[int, ...] = ()  # for REPORT SUPPORTED OPERATION CODES
    cdb_usage: bytes = b""  # CDB usage bitmap (SPC-4 6.35.3); its length is the CDB length


HANDLERS: dict[int, Entry] = {}


def command(*opcodes: int, access: Access, may_block: bool = False, submits: bool = False, reports_ua: bool = True,
            service_actions: tuple[int, ...] = (), usage: str = "") -> Callable[[Handler], Handler]:
    """Register a handler. `usage` is the CDB usage bitmap in hex, one per opcode
    separated by spaces (or one for all), with the opcode byte written as 'oo'."""
    usages = usage.split() or [""]

    def register(handler: Handler) -> Handler:
        for i, opcode in enumerate(opcodes):
            pattern = usages[min(i, len(usages) - 1)]
            cdb_usage = bytes.fromhex(pattern.replace("oo", f"{opcode:02x}")) if pattern else b""
            HANDLERS[opcode] = Entry(handler, access, may_block, submits, reports_ua, service_actions, cdb_usage)
        return handler
    return register
