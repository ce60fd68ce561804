"""SCSI status, sense data and the result of a command (SPC-4 4.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from target.stores.pieces import Pieces

GOOD = 0x00
CHECK_CONDITION = 0x02
CONDITION_MET = 0x04
BUSY = 0x08
RESERVATION_CONFLICT = 0x18
TASK_SET_FULL = 0x28

NO_SENSE = 0x0
RECOVERED_ERROR = 0x1
NOT_READY = 0x2
MEDIUM_ERROR = 0x3
HARDWARE_ERROR = 0x4
ILLEGAL_REQUEST = 0x5
UNIT_ATTENTION = 0x6
DATA_PROTECT = 0x7
ABORTED_COMMAND = 0xB
MISCOMPARE = 0xE

# (sense key, ASC, ASCQ) triples used by the command sets
INVALID_COMMAND_OPERATION_CODE = (ILLEGAL_REQUEST, 0x20, 0x00)
LBA_OUT_OF_RANGE = (ILLEGAL_REQUEST, 0x21, 0x00)
INVALID_FIELD_IN_CDB = (ILLEGAL_REQUEST, 0x24, 0x00)
LOGICAL_UNIT_NOT_SUPPORTED = (ILLEGAL_REQUEST, 0x25, 0x00)
INVALID_FIELD_IN_PARAMETER_LIST = (ILLEGAL_REQUEST, 0x26, 0x00)
SAVING_PARAMETERS_NOT_SUPPORTED = (ILLEGAL_REQUEST, 0x39, 0x00)
WRITE_PROTECTED = (DATA_PROTECT, 0x27, 0x00)
SPACE_ALLOCATION_FAILED_WRITE_PROTECT = (DATA_PROTECT, 0x27, 0x07)  # SBC-3 4.7.3.6: thin disk out of space
WRITE_ERROR = (MEDIUM_ERROR, 0x0C, 0x00)
UNRECOVERED_READ_ERROR = (MEDIUM_ERROR, 0x11, 0x00)
PROTOCOL_SERVICE_CRC_ERROR = (ABORTED_COMMAND, 0x47, 0x05)
PARAMETER_LIST_LENGTH_ERROR = (ILLEGAL_REQUEST, 0x1A, 0x00)


def fixed_sense(key: int, asc: int, ascq: int, *, information: int | None = None,
                field_pointer: int | None = None) -> bytes:
    """Fixed-format sense data (response code 0x70), 18 bytes."""
    sense = bytearray(18)
    sense[0] = 0x70 | (0x80 if information is not None else 0)
    sense[2] = key & 0x0F
    if information is not None:
        sense[3:7] = (information & 0xFFFFFFFF).to_bytes(4, "big")
    sense[7] = 10  # additional sense length
    sense[12], sense[13] = asc, ascq
    if field_pointer is not None:  # sense-key specific: C/D=1 (in the CDB), SKSV
        sense[15] = 0xC0
        sense[16:18] = field_pointer.to_bytes(2, "big")
    return bytes(sense)


@dataclass(slots=True)
class ScsiResult:
    status: int = GOOD
    data: bytes | bytearray | memoryview | Pieces = b""  # data-in for the initiator
    sense: bytes = b""
    # Bytes of data-out the command needed (for write residuals); None if it takes none.
    data_out_length: int | None = None


class CheckCondition(Exception):
    """Raised inside command handlers; turned into CHECK CONDITION + sense."""

    def __init__(self, triple: tuple[int, int, int], *, information: int | None = None,
                 field_pointer: int | None = None) -> None:
        super().__init__(f"sense {triple[0]:x}/{triple[1]:02x}/{triple[2]:02x}")
        self.triple = triple
        self.information = information
        self.field_pointer = field_pointer

    def result(self) -> ScsiResult:
        key, asc, ascq = self.triple
        return ScsiResult(CHECK_CONDITION, sense=fixed_sense(
            key, asc, ascq, information=self.information, field_pointer=self.field_pointer))


def check_condition(triple: tuple[int, int, int]) -> ScsiResult:
    return CheckCondition(triple).result()
