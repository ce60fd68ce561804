"""Logout (RFC 7143 11.14-11.15): closing the session, or refusing what ERL 0 cannot do.

A logout that succeeds aborts every task (their answers are dropped) and
closes the connection once the Logout Response is sent.
"""

from __future__ import annotations

from target.iscsi import wire
from target.iscsi.core import ConnectionCore
from target.iscsi.pdu import Pdu
from target.iscsi.tasks import ScsiTask


class Logout(ConnectionCore):
    def _logout(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        reason = pdu.logout_reason
        response = 0
        if reason == 1 and self.session is not None and pdu.cid != self.session.cid:
            response = 1  # CID not found: we have one connection per session
        elif reason == 2:
            response = 2  # connection recovery needs ERL 2
        self._emit(wire.logout_response(response, pdu.itt, self._advance_statsn(), self._expcmdsn, self._maxcmdsn()))
        if response == 0:
            for task in self._tasks.values():
                task.aborted = True
            self._close("logout", quiet=True)
