"""Sessions across connections: TSIH allocation and session reinstatement.

ERL 0 with one connection per session (as Windows' target): a new login with
the same initiator name, ISID and target and TSIH 0 reinstates the session,
closing the old one (RFC 7143 6.3.5). A login with a known TSIH and the same
CID replaces that connection.
"""

from __future__ import annotations

import itertools
from collections import Counter
import logging
from dataclasses import dataclass, field
from typing import Callable

from target.iscsi.login import LoginFailed, LoginResult, LoginStatus

log = logging.getLogger("bootsrv.iscsi.session")


@dataclass(slots=True)
class Session:
    tsih: int
    initiator_name: str
    isid: bytes
    target_name: str
    close_connection: Callable[[], None]
    cid: int = 0
    replaced: bool = False  # a new login took over this I_T nexus (reinstatement)
    holder: str = ""  # what the session claimed its target's stores as (targets.ScsiDispatcher.claim)


@dataclass(slots=True)
class SessionRegistry:
    max_sessions: int = 1024
    sessions: dict[int, Session] = field(default_factory=dict)
    logins: Counter[str] = field(default_factory=Counter)  # target name -> new sessions so far
    _tsihs: itertools.cycle = field(default_factory=lambda: itertools.cycle(range(1, 0x10000)))

    def bind(self, result: LoginResult, requested_tsih: int, close_connection: Callable[[], None]) -> Session:
        target_name = result.target.name if result.target else ""
        if requested_tsih:
            old = self.sessions.get(requested_tsih)
            if old is None or old.initiator_name != result.initiator_name or old.isid != result.isid:
                raise LoginFailed(LoginStatus.SESSION_DOES_NOT_EXIST, f"no session with TSIH {requested_tsih}")
            if old.cid != result.cid:
                raise LoginFailed(LoginStatus.CANT_INCLUDE_IN_SESSION, "one connection per session")
            log.info("connection %d of session %d reinstated", result.cid, requested_tsih)
            old.close_connection()
            old.close_connection = close_connection
            return old
        for old in list(self.sessions.values()):
            if (old.initiator_name == result.initiator_name and old.isid == result.isid
                    and old.target_name == target_name):
                log.info("session %d of %s reinstated by a new login", old.tsih, old.initiator_name)
                self.remove(old.tsih)
                old.replaced = True
                old.close_connection()
        if len(self.sessions) >= self.max_sessions:
            raise LoginFailed(LoginStatus.OUT_OF_RESOURCES, "too many sessions")
        tsih = next(t for t in self._tsihs if t not in self.sessions)
        session = Session(tsih, result.initiator_name, result.isid, target_name, close_connection, result.cid)
        self.sessions[tsih] = session
        self.logins[target_name] += 1
        return session

    def remove(self, tsih: int) -> None:
        self.sessions.pop(tsih, None)

    def drop_target(self, target_name: str) -> int:
        """Close every session on a target (its initiator rebooted: they are stale)."""
        stale = [s for s in self.sessions.values() if s.target_name == target_name]
        for session in stale:
            self.remove(session.tsih)
            session.close_connection()
        return len(stale)
