"""One iSCSI connection as a sans-IO state machine (h11 style).

    conn.receive_data(bytes) -> tasks to execute
    conn.complete(task, result)            # after the shell ran a task
    conn.tick(now)                         # keepalive and login timeouts
    conn.data_to_send() -> list of buffers # what to write to the socket
    conn.closing                           # reason to close once output is sent

It covers login, the CmdSN window, Data-Out collection with R2T, Data-In with
phase-collapsed status, NOP, Text (SendTargets), Logout, task management and
Reject. It opens no sockets and never blocks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Iterable

from target.iscsi import login as lg, wire
from target.iscsi.buffers import BufferPool
from target.iscsi.keys import KeyError_, encode_keys, parse_keys
from target.iscsi.params import DEFAULT_QUEUE_DEPTH, SessionParams, TargetLimits
from target.iscsi.pdu import (
    RESERVED_TAG,
    FramingError,
    Opcode,
    Pdu,
    PduReader,
    RejectReason,
    encode,
    lun_from_field,
    scsi_command_fields,
    sink_fields,
)
from target.iscsi.session import Session, SessionRegistry
from target.iscsi.targets import TargetDirectory, TargetSpec
from target.scsi.nexus import Nexus
from target.scsi.sense import GOOD, PROTOCOL_SERVICE_CRC_ERROR, CheckCondition, ScsiResult
from target.stores.pieces import Pieces

log = logging.getLogger("bootsrv.iscsi")

Buffer = bytes | bytearray | memoryview | Pieces  # Pieces: Data-In the shell may sendfile
# The largest data-out buffer one command may ask for; Block Limits VPD says the same.
MAX_COMMAND_BYTES = 64 << 20


def sn_diff(a: int, b: int) -> int:
    """a - b in 32-bit serial number arithmetic (RFC 1982)."""
    return ((a - b + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


_DATA_OUT = int(Opcode.DATA_OUT)


class TmfFunction:
    ABORT_TASK = 1
    ABORT_TASK_SET = 2
    CLEAR_ACA = 3
    CLEAR_TASK_SET = 4
    LOGICAL_UNIT_RESET = 5
    TARGET_WARM_RESET = 6
    TARGET_COLD_RESET = 7
    TASK_REASSIGN = 8


class TmfResponse:
    COMPLETE = 0
    TASK_DOES_NOT_EXIST = 1
    LUN_DOES_NOT_EXIST = 2
    REASSIGN_NOT_SUPPORTED = 4
    NOT_SUPPORTED = 5


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


@dataclass(slots=True)
class _PendingTmf:
    pdu: Pdu
    response: int
    waiting: set[ScsiTask]


class TargetConnection:
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
        self._pending_tmfs: list[_PendingTmf] = []
        self._ttt = 0
        self._created = now
        self._last_rx = now
        self._ping: tuple[int, float] | None = None  # (TTT, time sent) of our NOP-In
        self._pings_answered = 0
        self._text_left: tuple[int, bytes] | None = None  # (TTT, remaining text) of a long answer

    # ---- public API -------------------------------------------------------

    @property
    def expected_cmdsn(self) -> int:
        """The CmdSN the next non-immediate request must carry."""
        return self._expcmdsn

    @property
    def logged_in(self) -> bool:
        return self.session is not None

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
        while not self.closing:
            try:
                pdu = self.reader.next_pdu()
            except FramingError as exc:
                self._close(f"framing error: {exc}")
                break
            if pdu is None:
                break
            try:
                self._dispatch(pdu, ready)
            except _ProtocolViolation as exc:
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
        if self.closing:
            return
        if not self.logged_in:
            if now - self._created > self.login_timeout:
                self._close("login did not finish in time")
            return
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

    def data_to_send(self) -> list[Buffer]:
        out, self._out = self._out, []
        return out

    def connection_lost(self) -> None:
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
        # Non-immediate requests take a CmdSN slot and run in CmdSN order.
        cmdsn = pdu.cmdsn
        if cmdsn == self._expcmdsn:
            self._expcmdsn = (cmdsn + 1) & 0xFFFFFFFF
            handler(self, pdu, ready)
            if self._pending_sn:
                self._run_pending(ready)
        elif 0 < sn_diff(cmdsn, self._expcmdsn) <= sn_diff(self._maxcmdsn(), self._expcmdsn):
            self._pending_sn[cmdsn] = pdu.detach()  # outlives the receive buffer
        else:  # outside the window: RFC 7143 3.2.2.1 says silently ignore
            log.warning("%s: dropped %s with CmdSN %d outside window [%d, %d]", self.initiator,
                        Opcode(opcode).name, cmdsn, self._expcmdsn, self._maxcmdsn())

    def _run_pending(self, ready: list[ScsiTask]) -> None:
        """Run held requests whose turn has come (None: a CmdSN given up on, see ABORT TASK)."""
        pending = self._pending_sn
        while self._expcmdsn in pending and not self.closing:
            held = pending.pop(self._expcmdsn)
            self._expcmdsn = (self._expcmdsn + 1) & 0xFFFFFFFF
            if held is not None:
                _HANDLERS[held.opcode](self, held, ready)

    # ---- login ------------------------------------------------------------

    def _login_step(self, pdu: Pdu) -> None:
        if pdu.opcode != Opcode.LOGIN_REQUEST:
            self._close(f"opcode 0x{pdu.opcode:02x} before login")
            return
        self._out += self.login.handle(pdu)
        if self.login.failed is not None:
            self._close(f"login failed (0x{self.login.failed:04x})")
            return
        result = self.login.result
        if result is None:
            return
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

    # ---- SCSI command and data --------------------------------------------

    def _scsi_command(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        if self.target is None:
            self._reject(pdu, RejectReason.PROTOCOL_ERROR)  # no SCSI in a discovery session
            return
        if pdu.itt in self._tasks:
            self._reject(pdu, RejectReason.TASK_IN_PROGRESS)
            return
        flags, lun_field, itt, expected_length, cmdsn, cdb = scsi_command_fields(pdu.bhs)
        if pdu.ahs:
            cdb = pdu.cdb  # an extended CDB
        task = ScsiTask(itt, lun_from_field(lun_field), lun_field, cdb, bool(flags & 0x40),
                        bool(flags & 0x20), expected_length, cmdsn)
        if task.read and task.write:
            self._send_result(task, CheckCondition((0x5, 0x24, 0x00)).result())  # no bidirectional commands
            return
        if not task.write:
            self._tasks[task.itt] = task
            task.executing = True
            ready.append(task)
            return
        if task.expected_length > MAX_COMMAND_BYTES:
            log.warning("%s: write of %d bytes refused", self.initiator, task.expected_length)
            self._send_result(task, CheckCondition((0x5, 0x24, 0x00)).result())
            return
        task.data = self._early_buffers.pop(pdu.itt, None) or self.buffers.take(task.expected_length)
        immediate = pdu.data
        if len(immediate) > task.expected_length:
            raise _ProtocolViolation("immediate data beyond the expected transfer length")
        if immediate:
            if not pdu.in_place:
                task.data[: len(immediate)] = immediate
            task.received = len(immediate)
            task.digest_error = not pdu.data_digest_ok
            if task.digest_error:
                self._reject(pdu, RejectReason.DATA_DIGEST_ERROR)
        if self.params.initial_r2t:
            task.unsolicited_end = len(immediate)
        else:
            task.unsolicited_end = min(task.expected_length, self.params.first_burst_length)
        task.next_r2t_offset = task.unsolicited_end
        task.r2ts = {}
        self._tasks[task.itt] = task
        self._issue_r2ts(task)
        self._when_data_complete(task, ready)

    def _data_sink(self, bhs: bytes) -> memoryview | None:
        """Where the data segment of a large Data-Out or write command may land
        before the PDU is dispatched (see PduReader). Only into a buffer no
        running command uses, and only within its bounds: the PDU's checks come
        later, and one that fails them ends the connection or the task."""
        if self.closing or self.target is None or self.session is None:
            return None
        opcode, flags, length, itt, expected, offset = sink_fields(bhs)
        if opcode == _DATA_OUT:
            task = self._tasks.get(itt)
            if task is None or not task.write or task.executing or task.data is None:
                return None
            if offset + length > len(task.data):
                return None
            return task.data[offset : offset + length]
        if flags & 0x20 and itt not in self._tasks:  # a write command with immediate data
            if not length <= expected <= MAX_COMMAND_BYTES:
                return None
            buffer = self.buffers.take(expected)
            self._early_buffers[itt] = buffer
            return buffer[:length]
        return None

    def _data_out(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        task = self._tasks.get(pdu.itt)
        if task is None or not task.write or task.executing:
            # Data for a task that was aborted or already failed: nothing to do at ERL 0.
            log.debug("%s: Data-Out for unknown ITT 0x%08x ignored", self.initiator, pdu.itt)
            return
        offset, data = pdu.buffer_offset, pdu.data
        end = offset + len(data)
        ttt = pdu.ttt
        if ttt == RESERVED_TAG:
            if end > task.unsolicited_end:
                raise _ProtocolViolation("unsolicited data beyond FirstBurstLength")
            r2t = None
            expected_datasn = task.unsolicited_datasn
            task.unsolicited_datasn += 1
        else:
            r2t = task.r2ts.get(ttt)
            if r2t is None or offset < r2t.offset or end > r2t.offset + r2t.length:
                raise _ProtocolViolation(f"Data-Out outside its R2T (TTT 0x{ttt:08x}, offset {offset})")
            expected_datasn = r2t.next_datasn
            r2t.next_datasn += 1
        if pdu.datasn != expected_datasn:
            # ERL 0 cannot ask for the missing PDU again: the connection has failed.
            raise _ProtocolViolation(f"Data-Out DataSN {pdu.datasn}, expected {expected_datasn}")
        assert task.data is not None
        if not pdu.in_place:
            task.data[offset:end] = data
        task.received += len(data)
        if not pdu.data_digest_ok:
            task.digest_error = True
            self._reject(pdu, RejectReason.DATA_DIGEST_ERROR)
        if r2t is not None:
            r2t.received += len(data)
            if r2t.received >= r2t.length or pdu.final:
                del task.r2ts[ttt]
                self._issue_r2ts(task)
        self._when_data_complete(task, ready)

    def _when_data_complete(self, task: ScsiTask, ready: list[ScsiTask]) -> None:
        if not task.data_complete or task.executing or task.aborted:
            return
        if task.digest_error:  # ERL 0: the data cannot be asked for again
            self.complete(task, CheckCondition(PROTOCOL_SERVICE_CRC_ERROR).result())
        else:
            task.executing = True
            ready.append(task)

    def _issue_r2ts(self, task: ScsiTask) -> None:
        limit = self.params.max_outstanding_r2t
        while len(task.r2ts) < limit and task.next_r2t_offset < task.expected_length:
            offset = task.next_r2t_offset
            length = min(self.params.max_burst_length, task.expected_length - offset)
            task.next_r2t_offset += length
            ttt = self._next_ttt()
            task.r2ts[ttt] = R2TState(offset, length)
            self._emit(wire.r2t(task.lun_field, task.itt, ttt, self._statsn, self._expcmdsn, self._maxcmdsn(),
                                task.r2tsn, offset, length))
            task.r2tsn += 1

    def _send_result(self, task: ScsiTask, result: ScsiResult) -> None:
        expected = task.expected_length
        datasn = 0
        good = result.status == GOOD and not result.sense
        if task.read and result.data and good:
            data = result.data
            if isinstance(data, Pieces):
                if self.params.data_digest:  # the digest needs the bytes in hand
                    data = memoryview(data.tobytes())
            elif not isinstance(data, memoryview):
                data = memoryview(data)
            total = len(data)
            send = min(total, expected)
            residual_flag, residual = _residual(expected, total)
            chunk = max(512, self.params.initiator_max_recv_data_segment_length)
            burst = self.params.max_burst_length
            # Neither changes while one command's Data-In goes out: read them once.
            expcmdsn, maxcmdsn = self._expcmdsn, self._maxcmdsn()
            lun_field, itt = task.lun_field, task.itt
            offset = 0
            while offset < send:
                length = min(chunk, send - offset, burst - offset % burst)
                if offset + length >= send:  # the last: status phase-collapsed into it (S bit)
                    bhs = wire.data_in(0x81 | residual_flag, result.status, lun_field, itt, self._statsn, expcmdsn,
                                       maxcmdsn, datasn, offset, residual)
                    self._statsn = (self._statsn + 1) & 0xFFFFFFFF
                else:
                    bhs = wire.data_in(0x80 if (offset + length) % burst == 0 else 0, 0, lun_field, itt, 0, expcmdsn,
                                       maxcmdsn, datasn, offset, 0)
                datasn += 1
                self._emit(bhs, data[offset : offset + length])
                offset += length
            if send:
                return
        if task.write and result.data_out_length is not None:
            flag, residual = _residual(expected, result.data_out_length)
        elif task.read:
            flag, residual = _residual(expected, len(result.data) if good else 0)
        else:
            flag, residual = 0, 0
        bhs = wire.scsi_response(flag, result.status, task.itt, self._advance_statsn(), self._expcmdsn,
                                 self._maxcmdsn(), datasn or task.r2tsn, residual)
        payload = len(result.sense).to_bytes(2, "big") + result.sense if result.sense else b""
        self._emit(bhs, payload)

    # ---- other requests ---------------------------------------------------

    def _nop_out(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        if pdu.itt == RESERVED_TAG:  # answer to our NOP-In
            if self._ping is not None and pdu.ttt == self._ping[0]:
                self._ping = None
            self._pings_answered += 1
            return
        self._emit(wire.nop_in(pdu.lun_field, pdu.itt, RESERVED_TAG, self._advance_statsn(), self._expcmdsn,
                               self._maxcmdsn()), pdu.data)

    def _text(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        if self._text_left is not None and pdu.ttt == self._text_left[0]:
            text = self._text_left[1]
        else:
            try:
                pairs = parse_keys(pdu.data)
            except KeyError_:
                self._reject(pdu, RejectReason.PROTOCOL_ERROR)
                return
            answers: list[tuple[str, str]] = []
            for key, value in pairs:
                if key == "SendTargets":
                    answers += self._send_targets(value)
                else:
                    answers.append((key, "NotUnderstood"))
            text = encode_keys(answers)
        limit = self.params.initiator_max_recv_data_segment_length
        chunk, rest = text[:limit], text[limit:]
        ttt = RESERVED_TAG
        self._text_left = None
        if rest:
            ttt = self._next_ttt()
            self._text_left = (ttt, rest)
        self._emit(wire.text_response(not rest, pdu.lun_field, pdu.itt, ttt, self._advance_statsn(), self._expcmdsn,
                                      self._maxcmdsn()), chunk)

    def _send_targets(self, value: str) -> list[tuple[str, str]]:
        if value == "All":
            if self.target is not None:  # a normal session may only list its own target
                specs = [self.target]
            else:
                specs = self.directory.visible_to(self.initiator)
        elif value == "":
            specs = [self.target] if self.target else []
        else:
            spec = self.directory.find(value)
            specs = [spec] if spec is not None and spec.allows(self.initiator) else []
        answers: list[tuple[str, str]] = []
        for spec in sorted(specs, key=lambda s: s.name):
            answers.append(("TargetName", spec.name))
            for address in self.portal_addresses:
                answers.append(("TargetAddress", f"{address},{spec.portal_group_tag}"))
        return answers

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

    def _task_management(self, pdu: Pdu, ready: list[ScsiTask]) -> None:
        function = pdu.tmf_function
        affected: list[ScsiTask] = []
        response = TmfResponse.COMPLETE
        if function == TmfFunction.ABORT_TASK:
            task = self._tasks.get(pdu.ttt)
            ref = pdu.ref_cmdsn
            if task is not None:
                affected = [task]
            elif (0 <= sn_diff(ref, self._expcmdsn) <= sn_diff(self._maxcmdsn(), self._expcmdsn)
                  and sn_diff(ref, pdu.cmdsn) < 0):
                # Never received (or held for an earlier CmdSN): RFC 7143 11.5.1 b says
                # to count that CmdSN as received, so the commands after it can run.
                held = self._pending_sn.get(ref)
                if held is None or held.itt == pdu.ttt:
                    self._pending_sn[ref] = None
                    self._run_pending(ready)
            else:  # already done and answered, or never sent: 11.5.1 c
                response = TmfResponse.TASK_DOES_NOT_EXIST
        elif function in (TmfFunction.ABORT_TASK_SET, TmfFunction.CLEAR_TASK_SET, TmfFunction.LOGICAL_UNIT_RESET):
            lun = lun_from_field(pdu.lun_field)
            affected = [t for t in self._tasks.values() if t.lun == lun]
            if function == TmfFunction.LOGICAL_UNIT_RESET and self.target is not None:
                self.target.device.reset(lun)
        elif function in (TmfFunction.TARGET_WARM_RESET, TmfFunction.TARGET_COLD_RESET):
            affected = list(self._tasks.values())
            if self.target is not None:
                self.target.device.reset(None)
        elif function == TmfFunction.TASK_REASSIGN:
            response = TmfResponse.REASSIGN_NOT_SUPPORTED
        else:
            response = TmfResponse.NOT_SUPPORTED
        waiting = set()
        for task in affected:
            task.aborted = True
            if task.executing:
                waiting.add(task)  # its I/O is running: answer once it has finished
            else:
                self._tasks.pop(task.itt, None)
        pending = _PendingTmf(pdu, response, waiting)
        if waiting:
            self._pending_tmfs.append(pending)
        else:
            self._send_tmf_response(pending)

    def _release_tmfs(self, task: ScsiTask) -> None:
        for pending in list(self._pending_tmfs):
            pending.waiting.discard(task)
            if not pending.waiting:
                self._pending_tmfs.remove(pending)
                self._send_tmf_response(pending)

    def _send_tmf_response(self, pending: _PendingTmf) -> None:
        if self.closing:
            return
        self._emit(wire.tmf_response(pending.response, pending.pdu.itt, self._advance_statsn(), self._expcmdsn,
                                     self._maxcmdsn()))
        if pending.pdu.tmf_function == TmfFunction.TARGET_COLD_RESET:
            self._close("target cold reset")

    # ---- helpers ----------------------------------------------------------

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


class _ProtocolViolation(Exception):
    pass


def _residual(expected: int, actual: int) -> tuple[int, int]:
    """(flag bits, residual count): O (0x04) overflow, U (0x02) underflow."""
    if actual > expected:
        return 0x04, actual - expected
    if actual < expected:
        return 0x02, expected - actual
    return 0, 0


def _opname(opcode: int) -> str:
    try:
        return Opcode(opcode).name
    except ValueError:
        return f"0x{opcode:02x}"


_HANDLERS: dict[int, Callable[[TargetConnection, Pdu, list[ScsiTask]], None]] = {
    Opcode.NOP_OUT: TargetConnection._nop_out,
    Opcode.SCSI_COMMAND: TargetConnection._scsi_command,
    Opcode.TASK_MGMT_REQUEST: TargetConnection._task_management,
    Opcode.TEXT_REQUEST: TargetConnection._text,
    Opcode.LOGOUT_REQUEST: TargetConnection._logout,
}
