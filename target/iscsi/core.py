"""The state every concern of a connection shares, and the helpers they all use.

`TargetConnection` (protocol.py) is assembled from one mixin per concern
(cmdsn, dataout, datain, tmf, keepalive, text, logout); each is a subclass of
`ConnectionCore` and works on the attributes declared here, which
`TargetConnection.__init__` sets. Mixins, not delegate objects: a method found
through the class costs the same as before the split, and the Data-In and
Data-Out paths take no extra hop per PDU.

Invariants:
- StatSN advances by one for every PDU that carries status (`_advance_statsn`),
  and for no other.
- MaxCmdSN never grants more than `queue_depth` commands beyond those running.
- Once `closing` is set, nothing new is emitted but what is already queued.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from target.iscsi import wire
from target.iscsi.buffers import BufferPool
from target.iscsi.params import SessionParams
from target.iscsi.pdu import RESERVED_TAG, Opcode, Pdu, PduReader, RejectReason, encode
from target.iscsi.session import Session, SessionRegistry
from target.iscsi.tasks import Buffer, ScsiTask
from target.iscsi.targets import TargetDirectory, TargetSpec
from target.scsi.nexus import Nexus

if TYPE_CHECKING:
    from target.iscsi.tmf import PendingTmf
    from target.scsi.sense import ScsiResult

log = logging.getLogger("bootsrv.iscsi")


class ConnectionCore:
    directory: TargetDirectory
    registry: SessionRegistry
    portal_addresses: list[str]
    queue_depth: int
    nop_interval: float
    nop_timeout: float
    buffers: BufferPool
    reader: PduReader
    params: SessionParams
    session: Session | None
    target: TargetSpec | None
    initiator: str
    nexus: Nexus | None  # the I_T nexus of a normal session
    closing: str | None
    _out: list[Buffer]
    _statsn: int
    _expcmdsn: int
    _tasks: dict[int, ScsiTask]
    _early_buffers: dict[int, memoryview]  # ITT -> data-out buffer taken at its header
    _pending_sn: dict[int, Pdu | None]  # CmdSN -> request held for its turn (None: given up on)
    _pending_tmfs: list[PendingTmf]
    _ttt: int
    _last_rx: float
    _ping: tuple[int, float] | None  # (TTT, time sent) of our NOP-In
    _pings_answered: int
    _text_left: tuple[int, bytes] | None  # (TTT, remaining text) of a long answer

    if TYPE_CHECKING:  # what one concern calls in another; TargetConnection has them all
        def complete(self, task: ScsiTask, result: ScsiResult) -> None: ...
        def _send_result(self, task: ScsiTask, result: ScsiResult) -> None: ...
        def _run_pending(self, ready: list[ScsiTask]) -> None: ...

    def _reject(self, pdu: Pdu, reason: RejectReason) -> None:
        log.warning("%s: rejected %s PDU (%s)", self.initiator or "?", _opname(pdu.opcode), reason.name)
        self._emit(wire.reject(reason, self._advance_statsn(), self._expcmdsn, self._maxcmdsn()), pdu.bhs)

    def _maxcmdsn(self) -> int:
        outstanding = min(len(self._tasks), self.queue_depth)
        return (self._expcmdsn + self.queue_depth - 1 - outstanding) & 0xFFFFFFFF

    def _advance_statsn(self) -> int:
        """The StatSN for a response that takes one (every PDU carrying status), then the next."""
        statsn = self._statsn
        self._statsn = (statsn + 1) & 0xFFFFFFFF
        return statsn

    def _emit(self, bhs: bytearray, data: Buffer = b"") -> None:
        self._out += encode(bhs, data, header_digest=self.params.header_digest,
                            data_digest=self.params.data_digest)

    def _next_ttt(self) -> int:
        self._ttt = (self._ttt + 1) & 0xFFFFFFFF
        if self._ttt == RESERVED_TAG:
            self._ttt = 1
        return self._ttt

    def _close(self, reason: str, *, quiet: bool = False) -> None:
        if self.closing is None:
            self.closing = reason
            (log.debug if quiet else log.warning)("%s: closing connection: %s", self.initiator or "?", reason)


def _opname(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"0x{opcode:02x}"
