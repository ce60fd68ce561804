"""What one connection keeps about a SCSI task in flight.

A task is in the connection's task table from its command until `complete`.
`executing` is set while the shell runs it: a running task is never freed or
answered twice; an abort marks it `aborted`, and its answer is dropped when it
finishes. `data` is a BufferPool buffer, given back exactly once, by `complete`.
"""

from __future__ import annotations

from dataclasses import dataclass

from target.stores.pieces import Pieces

Buffer = bytes | bytearray | memoryview | Pieces  # Pieces: Data-In the shell may sendfile
# The largest data-out buffer one command may ask for; Block Limits VPD says the same.
MAX_COMMAND_BYTES = 64 << 20


@dataclass(slots=True)
class R2TState:
    offset: int
    length: int
    received: int = 0
    next_datasn: int = 0


@dataclass(slots=True, eq=False)
class ScsiTask:
    itt: int
    lun: int
    lun_field: bytes
    cdb: bytes
    read: bool
    write: bool
    expected_length: int
    cmdsn: int
    data: memoryview | None = None  # from the connection's BufferPool
    received: int = 0
    unsolicited_end: int = 0
    next_r2t_offset: int = 0
    r2ts: dict[int, R2TState] | None = None  # write commands only
    r2tsn: int = 0
    unsolicited_datasn: int = 0
    executing: bool = False
    aborted: bool = False
    digest_error: bool = False

    @property
    def data_complete(self) -> bool:
        return self.received >= self.expected_length if self.write else True


class ProtocolViolation(Exception):
    """The initiator broke the protocol in a way ERL 0 cannot recover from: the connection ends."""
