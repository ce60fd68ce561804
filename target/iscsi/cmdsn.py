"""The CmdSN window (RFC 7143 3.2.2.1): non-immediate requests run in CmdSN order.

A request with the expected CmdSN runs at once and so may free the ones held
after it; one ahead of it but inside [ExpCmdSN, MaxCmdSN] is held (detached
from the receive buffer) until its turn; one outside is dropped silently. A
held entry of None is a CmdSN given up on (ABORT TASK of a command that never
came, 11.5.1 b): its turn passes without running anything.
"""

from __future__ import annotations

from typing import Callable, ClassVar

from target.iscsi.core import ConnectionCore, log
from target.iscsi.pdu import Opcode, Pdu
from target.iscsi.tasks import ScsiTask

Handler = Callable[[ConnectionCore, Pdu, list[ScsiTask]], None]


def sn_diff(a: int, b: int) -> int:
    """a - b in 32-bit serial number arithmetic (RFC 1982)."""
    return ((a - b + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


class CmdSNWindow(ConnectionCore):
    _handlers: ClassVar[dict[int, Handler]]  # opcode -> handler, set by TargetConnection

    @property
    def expected_cmdsn(self) -> int:
        """The CmdSN the next non-immediate request must carry."""
        return self._expcmdsn

    def _hold_or_drop(self, pdu: Pdu) -> None:
        """A non-immediate request whose turn has not come (the dispatcher runs the one
        whose turn it is, then `_run_pending`): held if inside the window, else dropped."""
        cmdsn = pdu.cmdsn
        if 0 < sn_diff(cmdsn, self._expcmdsn) <= sn_diff(self._maxcmdsn(), self._expcmdsn):
            self._pending_sn[cmdsn] = pdu.detach()  # outlives the receive buffer
        else:  # outside the window: RFC 7143 3.2.2.1 says silently ignore
            log.warning("%s: dropped %s with CmdSN %d outside window [%d, %d]", self.initiator,
                        Opcode(pdu.opcode).name, cmdsn, self._expcmdsn, self._maxcmdsn())

    def _in_window(self, cmdsn: int) -> bool:
        """`cmdsn` is ExpCmdSN or one the window would still accept."""
        return 0 <= sn_diff(cmdsn, self._expcmdsn) <= sn_diff(self._maxcmdsn(), self._expcmdsn)

    def _run_pending(self, ready: list[ScsiTask]) -> None:
        """Run held requests whose turn has come (None: a CmdSN given up on, see ABORT TASK)."""
        pending = self._pending_sn
        while self._expcmdsn in pending and not self.closing:
            held = pending.pop(self._expcmdsn)
            self._expcmdsn = (self._expcmdsn + 1) & 0xFFFFFFFF
            if held is not None:
                self._handlers[held.opcode](self, held, ready)
