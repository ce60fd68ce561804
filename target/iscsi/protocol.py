"""One iSCSI connection as a sans-IO state machine (h11 style).

    conn.receive_data(bytes) -> tasks to execute
    conn.complete(task, result)            # after the shell ran a task
    conn.tick(now)                         # keepalive and login timeouts
    conn.data_to_send() -> list of buffers # what to write to the socket
    conn.closing                           # reason to close once output is sent

It opens no sockets and never blocks. The class is put together from one
module per concern: cmdsn (the CmdSN window), dataout (commands, Data-Out and
R2T), datain (Data-In and SCSI Response), tmf, keepalive (NOP), text and
logout; core.py holds the state they share and wire.py builds every PDU.
This module keeps the public API, the login phase and the dispatch table.

States and transitions (`ConnectionState`):

    LOGIN         --login succeeded-->                    FULL_FEATURE
    LOGIN         --login failed, timed out, bad framing-->  CLOSING
    FULL_FEATURE  --logout, cold reset, protocol error,
                    framing error, unanswered ping-->    CLOSING

In LOGIN only Login Requests are read (the login machine, login.py, has its own
stages); in FULL_FEATURE a request goes to `_HANDLERS` by opcode (Data-Out,
which takes no CmdSN, straight to its task); in CLOSING nothing more is read and
what is queued is still sent.
"""

from __future__ import annotations

import itertools
from enum import Enum
from typing import Callable, Iterable

from target.iscsi import login as lg
from target.iscsi.buffers import BufferPool
from target.iscsi.cmdsn import Handler
from target.iscsi.core import log
from target.iscsi.datain import DataIn
from target.iscsi.dataout import DataOut
from target.iscsi.keepalive import Keepalive
from target.iscsi.logout import Logout
from target.iscsi.params import DEFAULT_QUEUE_DEPTH, SessionParams, TargetLimits
from target.iscsi.pdu import FramingError, Opcode, Pdu, PduReader, RejectReason
from target.iscsi.session import Session, SessionRegistry
from target.iscsi.targets import ScsiDispatcher, TargetDirectory, TargetSpec
from target.iscsi.tasks import Buffer, ProtocolViolation, ScsiTask
from target.iscsi.text import TextRequests
from target.iscsi.tmf import PendingTmf, TaskManagement, TmfFunction
from target.scsi.claims import ClaimRefused
from target.scsi.nexus import Nexus
from target.scsi.sense import ScsiResult

# Names other modules import from here.
__all__ = ["ConnectionState", "ScsiTask", "TargetConnection", "TmfFunction"]

_DATA_OUT = int(Opcode.DATA_OUT)
_claim_numbers = itertools.count(1)  # makes each session's claim holder unique in the process


class ConnectionState(Enum):
    LOGIN = "login"
    FULL_FEATURE = "full feature"
    CLOSING = "closing"


class TargetConnection(Keepalive, TextRequests, Logout, TaskManagement, DataOut, DataIn):
    """Protocol state of one TCP connection to the target."""

    def __init__(
        self,
        directory: TargetDirectory,
        registry: SessionRegistry,
        *,
        limits: TargetLimits | None = None,
        portal_addresses: Iterable[str] = (),
        queue_depth: int = DEFAULT_QUEUE_DEPTH,
        nop_interval: float = 30.0,
        nop_timeout: float = 30.0,
        login_timeout: float = 30.0,
        now: float = 0.0,
        on_close: Callable[[], None] = lambda: None,
        buffers: BufferPool | None = None,
    ) -> None:
        self.directory = directory
        self.registry = registry
        self.limits = limits or TargetLimits()
        self.portal_addresses = list(portal_addresses)
        self.queue_depth = queue_depth
        self.nop_interval, self.nop_timeout, self.login_timeout = nop_interval, nop_timeout, login_timeout
        self._on_close = on_close
        self.buffers = buffers or BufferPool()
        self.reader = PduReader(max_data_segment=max(self.limits.max_recv_data_segment_length, 8192),
                                sink=self._data_sink)
        self.login = lg.LoginMachine(directory, self.limits, self._bind, queue_depth=queue_depth)
        self.params: SessionParams = self.login.params
        self.session: Session | None = None
        self.target: TargetSpec | None = None
        self.initiator = ""
        self.nexus: Nexus | None = None  # the I_T nexus of a normal session
        self.closing: str | None = None
        self._out: list[Buffer] = []
        self._statsn = 0
        self._expcmdsn = 0
        self._tasks: dict[int, ScsiTask] = {}
        self._early_buffers: dict[int, memoryview] = {}  # ITT -> data-out buffer taken at its header
        self._pending_sn: dict[int, Pdu | None] = {}
        self._pending_tmfs: list[PendingTmf] = []
        self._ttt = 0
        self._created = now
        self._last_rx = now
        self._ping: tuple[int, float] | None = None  # (TTT, time sent) of our NOP-In
        self._pings_answered = 0
        self._text_left: tuple[int, bytes] | None = None  # (TTT, remaining text) of a long answer
        # A login whose target must be claimed first (a store one server at a time serves):
        # (its withheld response, its request, the claim's holder) until the shell's claim ends.
        self._claiming: tuple[list[Buffer], Pdu, str] | None = None
        self._claim_asked = False
        self._lost = False
        self.releases: list[tuple[ScsiDispatcher, str]] = []  # claims the shell gives back (a worker)

    # ---- public API -------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        if self.closing is not None:
            return ConnectionState.CLOSING
        return ConnectionState.LOGIN if self.session is None else ConnectionState.FULL_FEATURE

    @property
    def logged_in(self) -> bool:
        return self.session is not None and self._claiming is None

    def receive_data(self, data: bytes, now: float | None = None) -> list[ScsiTask]:
        if self.closing:
            return []
        self.reader.feed(data)
        return self.buffer_updated(0, now)

    def get_buffer(self) -> memoryview:
        """Where the shell may receive bytes to (then call buffer_updated)."""
        return self.reader.get_buffer()

    def buffer_updated(self, nbytes: int, now: float | None = None) -> list[ScsiTask]:
        """Process `nbytes` written into get_buffer(); return tasks to execute."""
        self.reader.buffer_updated(nbytes)
        if now is not None:
            self._last_rx = now
            self._ping = None  # any traffic shows the initiator is alive
        ready: list[ScsiTask] = []
        while not self.closing and self._claiming is None:  # after a claim, claim_done reads on
            try:
                pdu = self.reader.next_pdu()
            except FramingError as exc:
                self._close(f"framing error: {exc}")
                break
            if pdu is None:
                break
            try:
                self._dispatch(pdu, ready)
            except ProtocolViolation as exc:
                self._close(f"protocol error: {exc}")
            if pdu.in_place and self._early_buffers:  # a command held for CmdSN order keeps a copy
                self._early_buffers.pop(pdu.itt, None)
        return ready

    def complete(self, task: ScsiTask, result: ScsiResult) -> None:
        """Send the outcome of an executed task (nothing if it was aborted)."""
        task.executing = False
        if self._tasks.get(task.itt) is task:
            del self._tasks[task.itt]
        if task.data is not None:  # the command has run: nothing holds its data any more
            self.buffers.give(task.data)
            task.data = None
        if not task.aborted and not self.closing:
            self._send_result(task, result)
        if self._pending_tmfs:
            self._release_tmfs(task)

    def tick(self, now: float) -> None:
        if self.closing or self._claiming is not None:  # a claim may wait for a dead owner's watch to expire
            return
        if not self.logged_in:
            if now - self._created > self.login_timeout:
                self._close("login did not finish in time")
            return
        self._keepalive(now)

    def data_to_send(self) -> list[Buffer]:
        out, self._out = self._out, []
        return out

    def connection_lost(self) -> None:
        self._lost = True
        for task in self._tasks.values():
            task.aborted = True
        self._tasks.clear()
        self._release_session()

    # ---- dispatch ---------------------------------------------------------

    def _dispatch(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        if self.session is None:
            self._login_step(pdu)
            return
        first = pdu.bhs[0]
        opcode = first & 0x3F
        if opcode == _DATA_OUT:
            self._data_out(pdu, ready)
            return
        handler = _HANDLERS.get(opcode)
        if handler is None:
            # A second login, or SNACK (which needs ERL > 0), is a protocol error.
            self._reject(pdu, RejectReason.PROTOCOL_ERROR if opcode in (Opcode.LOGIN_REQUEST, Opcode.SNACK_REQUEST)
                         else RejectReason.COMMAND_NOT_SUPPORTED)
            return
        if first & 0x40:  # immediate
            handler(self, pdu, ready)
            return
        # Non-immediate requests take a CmdSN slot and run in CmdSN order. The
        # common case, its turn, stays inline: this runs for every command.
        cmdsn = pdu.cmdsn
        if cmdsn == self._expcmdsn:
            self._expcmdsn = (cmdsn + 1) & 0xFFFFFFFF
            handler(self, pdu, ready)
            if self._pending_sn:
                self._run_pending(ready)
        else:
            self._hold_or_drop(pdu)

    # ---- login ------------------------------------------------------------

    def _login_step(self, pdu: Pdu) -> None:
        if pdu.opcode != Opcode.LOGIN_REQUEST:
            self._close(f"opcode 0x{pdu.opcode:02x} before login")
            return
        response = self.login.handle(pdu)
        if self.login.failed is not None:
            self._out += response
            self._close(f"login failed (0x{self.login.failed:04x})")
            return
        result = self.login.result
        if result is None:
            self._out += response
            return
        session = self.session
        assert session is not None
        if result.target is not None and not session.holder and result.target.device.claims():
            # The response waits until the shell has claimed the target on a worker thread.
            holder = f"{result.initiator_name} session {session.tsih} #{next(_claim_numbers)}"
            self._claiming = (response, pdu.detach(), holder)
            return
        self._out += response
        self._full_feature(result)

    def claim_wanted(self) -> tuple[ScsiDispatcher, str] | None:
        """The device and holder the shell must claim (device.claim, blocking) before this
        login may finish, once; then it calls claim_done."""
        if self._claiming is None or self._claim_asked or self.target is not None:
            return None
        result = self.login.result
        if result is None or result.target is None:
            return None
        self._claim_asked = True
        return result.target.device, self._claiming[2]

    def claim_done(self, refusal: ClaimRefused | None) -> list[ScsiTask]:
        """The shell's claim ended: the login finishes (the session starts), or it is redirected
        to the server that serves the target, or it fails (target error: service unavailable).
        Returns tasks that came in meanwhile."""
        assert self._claiming is not None and self.session is not None
        response, request, holder = self._claiming
        self._claiming = None
        result = self.login.result
        assert result is not None and result.target is not None
        if refusal is None and self._lost:  # the initiator gave up waiting: give the claim back
            self.releases.append((result.target.device, holder))
            return []
        if refusal is not None:
            self.initiator = result.initiator_name
            self.registry.remove(self.session.tsih)
            self.session = None
            self._out += self.login.refuse_bound(request, refusal.reason, refusal.moved_to)
            self._close(("login redirected: " if refusal.moved_to else "login refused: ") + refusal.reason)
            return []
        self.session.holder = holder
        self._out += response
        self._full_feature(result)
        return self.buffer_updated(0)

    def _full_feature(self, result: lg.LoginResult) -> None:
        self.params = result.params
        self.target = result.target
        self.initiator = result.initiator_name
        self._statsn = result.statsn
        self._expcmdsn = result.expcmdsn
        if self.target is not None:
            self.nexus = Nexus(self.initiator, result.isid, self.target.portal_group_tag)
            self.target.device.nexus_added(self.nexus)
        self.reader.header_digest = self.params.header_digest
        self.reader.data_digest = self.params.data_digest
        log.info("%s logged in to %s (TSIH %d, digests %s/%s, MaxRecvDSL %d, MaxBurst %d, FirstBurst %d%s%s)",
                 self.initiator, self.target.name if self.target else "discovery", result.tsih,
                 "CRC32C" if self.params.header_digest else "None",
                 "CRC32C" if self.params.data_digest else "None",
                 self.params.initiator_max_recv_data_segment_length, self.params.max_burst_length,
                 self.params.first_burst_length, ", ImmediateData" if self.params.immediate_data else "",
                 ", InitialR2T" if self.params.initial_r2t else "")

    def _bind(self, result: lg.LoginResult) -> int:
        self.session = self.registry.bind(result, self.login.requested_tsih, self._on_close)
        return self.session.tsih

    def _release_session(self) -> None:
        session = self.session
        if session is None or session.close_connection is not self._on_close:
            return  # never logged in, or a new connection took this session over
        self.registry.remove(session.tsih)
        if not session.replaced and self.target is not None and self.nexus is not None:
            self.target.device.nexus_removed(self.nexus)  # the I_T nexus is gone (ERL 0)
        if session.holder and self.target is not None:  # its claim is given back (a worker)
            self.releases.append((self.target.device, session.holder))
            session.holder = ""


# What each request does in the full feature phase (Data-Out: see _dispatch).
_HANDLERS: dict[int, Handler] = {
    Opcode.NOP_OUT: TargetConnection._nop_out,
    Opcode.SCSI_COMMAND: TargetConnection._scsi_command,
    Opcode.TASK_MGMT_REQUEST: TargetConnection._task_management,
    Opcode.TEXT_REQUEST: TargetConnection._text,
    Opcode.LOGOUT_REQUEST: TargetConnection._logout,
}
TargetConnection._handlers = _HANDLERS
