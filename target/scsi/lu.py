"""A logical unit: one backing store behind the SPC and SBC command sets.

Each command handler takes (lu, cdb, data_out) and returns a ScsiResult or
raises CheckCondition; this module maps failures to sense so that no command,
however malformed, escapes as an exception.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable

from target.scsi import sense as s
from target.stores.base import BlockStore, StoreError

log = logging.getLogger("bootsrv.scsi")

BLOCK_SIZE = 512
Handler = Callable[["LogicalUnit", bytes, "bytes | bytearray | None"], s.ScsiResult]
HANDLERS: dict[int, Handler] = {}
BLOCKING: set[int] = set()  # opcodes whose handler may wait on the disk (fsync)
INTERNAL_TARGET_FAILURE = (s.HARDWARE_ERROR, 0x44, 0x00)


def command(*opcodes: int, may_block: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for opcode in opcodes:
            HANDLERS[opcode] = handler
            if may_block:
                BLOCKING.add(opcode)
        return handler
    return register


@dataclass(slots=True)
class LogicalUnit:
    name: str  # the disk's name in the configuration: the source of its stable identifiers
    store: BlockStore
    target_name: str = ""
    readonly: bool = False
    vendor: str = "BOOTSRV"
    product: str = "VIRTUAL DISK"
    revision: str = "0001"
    _identity: bytes = field(init=False, default=b"")

    def __post_init__(self) -> None:
        self.readonly = self.readonly or self.store.readonly
        self._identity = hashlib.sha256(b"bootsrv-lu:" + self.name.encode()).digest()

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

    def execute(self, cdb: bytes, data_out: bytes | bytearray | None) -> s.ScsiResult:
        if not cdb:
            return s.check_condition(s.INVALID_COMMAND_OPERATION_CODE)
        handler = HANDLERS.get(cdb[0])
        if handler is None:
            return s.check_condition(s.INVALID_COMMAND_OPERATION_CODE)
        try:
            return handler(self, cdb, data_out)
        except s.CheckCondition as cc:
            return cc.result()
        except StoreError as exc:
            log.error("%s: %s", self.name, exc)
            return s.check_condition(s.UNRECOVERED_READ_ERROR if cdb[0] in READ_OPCODES else s.WRITE_ERROR)
        except (IndexError, ValueError) as exc:  # a CDB shorter than its opcode implies
            log.warning("%s: malformed CDB %s: %s", self.name, cdb.hex(), exc)
            return s.check_condition(s.INVALID_FIELD_IN_CDB)
        except Exception:  # never let one command take the server down
            log.exception("%s: internal error on CDB %s", self.name, cdb.hex())
            return s.check_condition(INTERNAL_TARGET_FAILURE)


READ_OPCODES = frozenset({0x08, 0x28, 0xA8, 0x88})
