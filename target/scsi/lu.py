"""A logical unit: one backing store behind the SPC and SBC command sets.

Before a handler runs, the unit reports pending unit attentions and checks
reservations (SAM-5 5.14, SPC-4 5.12). Failures become sense data here, so no
command, however malformed, escapes as an exception.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from target.scsi import sense as s
from target.scsi.nexus import Nexus
from target.scsi.registry import HANDLERS, Access, Command
from target.scsi.reservations import Reservations
from target.scsi.store_sense import store_error_sense
from target.stores.base import BlockStore, StoreError, WouldBlock
from target.stores.submit import submits_io

log = logging.getLogger("bootsrv.scsi")

BLOCK_SIZE = 512
INTERNAL_TARGET_FAILURE = (s.HARDWARE_ERROR, 0x44, 0x00)
POWER_ON_RESET = (s.UNIT_ATTENTION, 0x29, 0x00)
BUS_DEVICE_RESET = (s.UNIT_ATTENTION, 0x29, 0x03)
MODE_PARAMETERS_CHANGED = (s.UNIT_ATTENTION, 0x2A, 0x01)
CAPACITY_DATA_HAS_CHANGED = (s.UNIT_ATTENTION, 0x2A, 0x09)
_MAX_PENDING_UA = 8


class SubmittedWrites:
    """Writes submitted to the store and not finished yet. They start only while nobody holds
    the unit's write_lock, and whoever needs a write atomic against all others (COMPARE AND
    WRITE, ORWRITE) takes the lock and then waits here until none is left."""

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self._count = 0

    def try_start(self, write_lock: threading.Lock) -> bool:
        """On the event loop: False when write_lock is held (the write then waits on a thread)."""
        if not write_lock.acquire(blocking=False):
            return False
        try:
            with self._idle:
                self._count += 1
        finally:
            write_lock.release()
        return True

    def finished(self) -> None:
        with self._idle:
            self._count -= 1
            if not self._count:
                self._idle.notify_all()

    def wait_none(self) -> None:
        with self._idle:
            while self._count:
                self._idle.wait()


@dataclass(slots=True)
class LogicalUnit:
    name: str  # the disk's name in the configuration: the source of its stable identifiers
    store: BlockStore
    target_name: str = ""
    readonly: bool = False
    vendor: str = "BOOTSRV"
    product: str = "VIRTUAL DISK"
    revision: str = "0001"
    write_cache: bool = True  # WCE: cleared by MODE SELECT, every write is then made durable
    reservations: Reservations = field(default_factory=Reservations)
    # Serialises COMPARE AND WRITE against writes (which may run on worker threads).
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    submitted_writes: SubmittedWrites = field(default_factory=SubmittedWrites)
    prevent: set[str] = field(default_factory=set)  # nexus keys holding PREVENT MEDIUM REMOVAL
    _identity: bytes = field(init=False, default=b"")
    _unit_attentions: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    _known_size: int = 0

    def __post_init__(self) -> None:
        self.readonly = self.readonly or self.store.readonly
        self._identity = hashlib.sha256(b"bootsrv-lu:" + self.name.encode()).digest()
        self._known_size = self.store.size
        self.reservations.notify = lambda key, triple: self.add_unit_attention(triple, only=key)

    @property
    def block_count(self) -> int:
        return self.store.size // BLOCK_SIZE

    @property
    def naa_id(self) -> bytes:
        """NAA 3 (locally assigned) 8-byte identifier, stable for the disk's name."""
        ident = bytearray(self._identity[:8])
        ident[0] = 0x30 | (ident[0] & 0x0F)
        return bytes(ident)

    @property
    def serial(self) -> str:
        return self._identity[8:16].hex()

    # ---- unit attentions ------------------------------------------------

    def add_unit_attention(self, triple: tuple[int, int, int], *, only: str | None = None,
                           exclude: str | None = None) -> None:
        """Queue a unit attention for every known nexus (or one, or all but one)."""
        for key, queue in self._unit_attentions.items():
            if (only is None or key == only) and key != exclude and triple not in queue:
                queue.append(triple)
                del queue[:-_MAX_PENDING_UA]

    def nexus_added(self, nexus: Nexus) -> None:
        self._unit_attentions[nexus.key] = [POWER_ON_RESET]

    def nexus_removed(self, nexus: Nexus) -> None:
        self._unit_attentions.pop(nexus.key, None)
        self.prevent.discard(nexus.key)
        self.reservations.nexus_lost(nexus)

    def reset(self, triple: tuple[int, int, int] = BUS_DEVICE_RESET) -> None:
        """LOGICAL UNIT RESET / target reset: clears PREVENT and SPC-2 reservations."""
        self.prevent.clear()
        self.reservations.reset()
        self.add_unit_attention(triple)

    def take_unit_attention(self, nexus: Nexus) -> tuple[int, int, int] | None:
        queue = self._unit_attentions.get(nexus.key)
        return queue.pop(0) if queue else None

    def check_capacity(self) -> None:
        """Called periodically: a disk that grew under us tells every initiator."""
        size = self.store.refresh_size()
        if size != self._known_size:
            log.info("%s: capacity changed from %d to %d bytes", self.name, self._known_size, size)
            self._known_size = size
            self.add_unit_attention(CAPACITY_DATA_HAS_CHANGED)

    # ---- execution ------------------------------------------------------

    def execute(self, cmd: Command) -> s.ScsiResult:
        cdb = cmd.cdb
        if not cdb:
            return s.check_condition(s.INVALID_COMMAND_OPERATION_CODE)
        entry = HANDLERS.get(cdb[0])
        if entry is None:
            return s.check_condition(s.INVALID_COMMAND_OPERATION_CODE)
        if entry.reports_ua:
            pending = self.take_unit_attention(cmd.nexus)
            if pending is not None:
                return s.check_condition(pending)
        if self.reservations.active and self.reservations.conflicts(cmd.nexus, entry.access, cdb):
            return s.ScsiResult(s.RESERVATION_CONFLICT)
        try:
            return entry.handler(self, cmd)
        except s.CheckCondition as cc:
            return cc.result()
        except WouldBlock:
            raise  # the transport asks again from a thread
        except StoreError as exc:  # NoSpace, FormatError, I/O errors: each has its sense
            log.error("%s: %s", self.name, exc)
            return s.check_condition(store_error_sense(exc, reading=entry.access is Access.READ))
        except (IndexError, ValueError) as exc:  # a CDB shorter than its opcode implies
            log.warning("%s: malformed CDB %s: %s", self.name, cdb.hex(), exc)
            return s.check_condition(s.INVALID_FIELD_IN_CDB)
        except Exception:  # never let one command take the server down
            log.exception("%s: internal error on CDB %s", self.name, cdb.hex())
            return s.check_condition(INTERNAL_TARGET_FAILURE)

    def may_block(self, cdb: bytes) -> bool:
        entry = HANDLERS.get(cdb[0]) if cdb else None
        # A disk held still by a snapshot would stall the event loop: wait on a worker thread.
        if getattr(self.store, "held", False):
            return True
        if entry is None:
            return False
        if submits_io(self.store):  # every plain call waits for the network: only submitted I/O stays
            return not entry.submits
        return entry.may_block

    # ---- submitted I/O (target.stores.submit) ------------------------------

    @property
    def submits_io(self) -> bool:
        return submits_io(self.store)

    def completion(self, cmd: Command, *, reading: bool, result: Callable[[Any], s.ScsiResult],
                   after: Callable[[], None] | None = None) -> Callable[[Any], None]:
        """The store's `done` for a submitted request of `cmd`: its outcome made into the
        command's result as execute would (a StoreError into its sense), handed to cmd.done.
        Runs on the store's completion thread; `after` runs first (e.g. a write's bookkeeping)."""
        done = cmd.done
        assert done is not None

        def finished(outcome: Any) -> None:
            if after is not None:
                after()
            if isinstance(outcome, StoreError):
                log.error("%s: %s", self.name, outcome)
                answer = s.check_condition(store_error_sense(outcome, reading=reading))
            else:
                try:
                    answer = result(outcome)
                except Exception:  # the initiator must hear something, or it waits for ever
                    log.exception("%s: the result of CDB %s could not be made", self.name, cmd.cdb.hex())
                    answer = s.check_condition(INTERNAL_TARGET_FAILURE)
            done(answer)
        return finished

    @contextmanager
    def exclusive_write(self) -> Iterator[None]:
        """No other write runs or starts in here, plain or submitted (COMPARE AND WRITE, ORWRITE)."""
        with self.write_lock:
            self.submitted_writes.wait_none()
            yield
