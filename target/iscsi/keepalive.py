"""NOP keepalive: our NOP-In pings to a silent initiator, and answers to its NOP-Out.

Any received byte counts as a sign of life. A ping left unanswered for
nop_timeout closes the connection, unless this initiator has never answered
one (iPXE): then pings stop for the connection instead.
"""

from __future__ import annotations

from target.iscsi import wire
from target.iscsi.core import ConnectionCore, log
from target.iscsi.pdu import RESERVED_TAG, Pdu
from target.iscsi.tasks import ScsiTask


class Keepalive(ConnectionCore):
    def _keepalive(self, now: float) -> None:
        """Ping after nop_interval of silence; give up after nop_timeout without an answer."""
        if self._ping is not None:
            if now - self._ping[1] <= self.nop_timeout:
                return
            if self._pings_answered:
                self._close("no answer to NOP-In")
            else:
                # iPXE never answers NOP-In pings: for such an initiator, pinging
                # only breaks a working session. TCP keepalive still finds dead peers.
                log.info("%s does not answer NOP-In; keepalive pings off for this connection", self.initiator)
                self.nop_interval = 0
                self._ping = None
        elif self.nop_interval and now - self._last_rx > self.nop_interval:
            ttt = self._next_ttt()
            self._ping = (ttt, now)
            self._emit(wire.nop_in(wire.NO_LUN, RESERVED_TAG, ttt, self._statsn, self._expcmdsn, self._maxcmdsn()))

    def _nop_out(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        if pdu.itt == RESERVED_TAG:  # answer to our NOP-In
            if self._ping is not None and pdu.ttt == self._ping[0]:
                self._ping = None
            self._pings_answered += 1
            return
        self._emit(wire.nop_in(pdu.lun_field, pdu.itt, RESERVED_TAG, self._advance_statsn(), self._expcmdsn,
                               self._maxcmdsn()), pdu.data)
