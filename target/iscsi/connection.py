"""The asyncio shell around the sans-IO iSCSI core: sockets, timers, threads.

Everything protocol-shaped lives in protocol.py; this file only moves bytes,
runs SCSI commands (inline; on a worker thread when they wait for fsync; or
submitted to a store that completes them on its own thread, handoff.py) and
keeps time.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from target.iscsi.buffers import BufferPool
from target.iscsi.handoff import Handoff
from target.iscsi.login import LoginStatus
from target.iscsi.output import SocketOutput
from target.iscsi.params import DEFAULT_QUEUE_DEPTH, TargetLimits
from target.iscsi.protocol import ScsiTask, TargetConnection
from target.iscsi.session import SessionRegistry
from target.iscsi.stats import CommandStats
from target.iscsi.targets import ScsiDispatcher, TargetDirectory
from target.iscsi.throttle import LoginThrottle
from target.scsi.claims import ClaimRefused
from target.scsi.registry import PENDING
from target.scsi.sense import ScsiResult, check_condition
from target.stores.base import WouldBlock

log = logging.getLogger("bootsrv.iscsi")

TICK_SECONDS = 1.0
CAPACITY_CHECK_SECONDS = 1.0
SUBMITTED_DRAIN_SECONDS = 60.0  # a stop waits this long for submitted commands (librbd times out at 30 s)
INTERNAL_TARGET_FAILURE = (0x4, 0x44, 0x00)


@dataclass(frozen=True, slots=True)
class ServerSettings:
    limits: TargetLimits = TargetLimits()
    queue_depth: int = DEFAULT_QUEUE_DEPTH
    max_sessions: int = 1024
    nop_interval: float = 30.0
    nop_timeout: float = 30.0
    login_timeout: float = 30.0
    worker_threads: int = 8
    max_pending_logins: int = 256  # connected, not logged in yet
    max_pending_logins_per_address: int = 64  # one machine may start many sessions at once


class IscsiServer:
    """Listens on portals and serves the targets of one directory."""

    def __init__(self, directory: TargetDirectory, settings: ServerSettings = ServerSettings()) -> None:
        self.directory = directory
        self.settings = settings
        self.registry = SessionRegistry(max_sessions=settings.max_sessions)
        self.executor = ThreadPoolExecutor(settings.worker_threads, thread_name_prefix="scsi-io")
        self.connections: set[_ConnectionShell] = set()
        self.stats = CommandStats()
        self.target_stats: dict[str, CommandStats] = {}  # per target logged in to (one per configured target)
        self.buffers = BufferPool()
        self.throttle = LoginThrottle()
        self._warned: dict[str, float] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self._portals: list[tuple[str, int]] = []
        self._capacity_timer: asyncio.TimerHandle | None = None
        self.handoff: Handoff | None = None  # made on the loop, at start

    async def start(self, portals: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """Listen on every portal; returns the bound (host, port) pairs (port 0 picks one)."""
        loop = asyncio.get_running_loop()
        self.handoff = Handoff(loop)
        bound: list[tuple[str, int]] = []
        for host, port in portals:
            server = await loop.create_server(lambda: _ConnectionShell(self), host, port,
                                              reuse_address=True, backlog=256)
            self._servers.append(server)
            sock = server.sockets[0]
            actual_port = sock.getsockname()[1]
            bound.append((host, actual_port))
        self._portals = bound
        self._capacity_timer = loop.call_later(CAPACITY_CHECK_SECONDS, self._check_capacity)
        return bound

    def login_slot_refusal(self, address: str) -> str | None:
        """Connections that have not logged in yet are capped, per address and in
        all: a flood of half-open logins (each held until login_timeout) cannot
        crowd out the clients that log in."""
        settings = self.settings
        pending = [shell for shell in self.connections if shell.core is not None and not shell.core.logged_in]
        if len(pending) >= settings.max_pending_logins:
            return f"{len(pending)} connections have not logged in yet"
        if sum(shell.address == address for shell in pending) >= settings.max_pending_logins_per_address:
            return f"{settings.max_pending_logins_per_address} connections from there have not logged in yet"
        return None

    def warn_once_a_minute(self, address: str, message: str) -> None:
        """A flood from one address logs one line a minute, not one per connection."""
        now = time.monotonic()
        if now - self._warned.get(address, -60.0) < 60.0:
            log.debug("%s", message)
            return
        if len(self._warned) > 4096:
            self._warned.clear()
        self._warned[address] = now
        log.warning("%s (more like it logged at debug level for a minute)", message)

    def _check_capacity(self) -> None:
        """A disk grown under running sessions tells them (CAPACITY DATA HAS CHANGED)."""
        try:
            self.directory.check_capacity()
        except Exception as exc:  # a store that cannot say its size (its cluster fenced us): check on
            self.warn_once_a_minute("capacity", f"checking the disks' sizes failed: {exc}")
        self._capacity_timer = asyncio.get_running_loop().call_later(CAPACITY_CHECK_SECONDS,
                                                                     self._check_capacity)

    def portal_addresses(self, local: tuple[str, int]) -> list[str]:
        """TargetAddress values for SendTargets: wildcard portals answer with the
        address the initiator reached us on."""
        addresses = []
        for host, port in self._portals:
            if host in ("0.0.0.0", "::", ""):
                host, port = local[0], local[1]
            addresses.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        return list(dict.fromkeys(addresses))

    async def stop(self) -> None:
        if self._capacity_timer is not None:
            self._capacity_timer.cancel()
        for server in self._servers:
            server.close()
        for shell in list(self.connections):
            shell.close()
        for server in self._servers:
            await server.wait_closed()
        if self.handoff is not None:  # submitted commands finish before the stores may close
            try:
                await asyncio.wait_for(self.handoff.drained(), SUBMITTED_DRAIN_SECONDS)
            except asyncio.TimeoutError:
                log.warning("%d submitted commands did not finish in %.0f s", self.handoff.pending,
                            SUBMITTED_DRAIN_SECONDS)
        # Let worker threads finish what initiators already sent (never drop acknowledged writes).
        await asyncio.get_running_loop().run_in_executor(None, self.executor.shutdown, True)


class _ConnectionShell(asyncio.BufferedProtocol):
    """Receives straight into the protocol core's buffer (no per-read bytes objects)."""

    def __init__(self, server: IscsiServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.core: TargetConnection | None = None
        self._target_stats: CommandStats | None = None  # set at its first command (_find_target_stats)
        self.peer = "?"
        self.address = "?"  # the initiator's IP address
        self._timer: asyncio.TimerHandle | None = None
        self._paused_reading = False
        self.output: SocketOutput | None = None

    # ---- asyncio.Protocol ----------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.address = _unmapped(peer[0])
        self.peer = f"{self.address}:{peer[1]}"
        wait = self.server.throttle.blocked_for(self.address)
        if wait:
            log.debug("%s: refused, too many failed logins (%.0f s left)", self.peer, wait)
            transport.close()
            return
        refusal = self.server.login_slot_refusal(self.address)
        if refusal:
            self.server.warn_once_a_minute(self.address, f"{self.peer}: refused: {refusal}")
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        self.output = SocketOutput(self.loop, sock.fileno(), on_pressure=self._pressure,
                                   on_error=self._write_failed)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # Finds peers that vanished without a FIN (a client powered off),
            # including initiators such as iPXE that ignore NOP-In pings.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
                if hasattr(socket, option):
                    sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
        local = transport.get_extra_info("sockname") or ("127.0.0.1", 3260)
        settings = self.server.settings
        self.core = TargetConnection(
            self.server.directory, self.server.registry, limits=settings.limits,
            portal_addresses=self.server.portal_addresses((_unmapped(local[0]), local[1])),
            queue_depth=settings.queue_depth, nop_interval=settings.nop_interval,
            nop_timeout=settings.nop_timeout, login_timeout=settings.login_timeout,
            now=self.loop.time(), on_close=self.close, buffers=self.server.buffers)
        self.server.connections.add(self)
        self._timer = self.loop.call_later(TICK_SECONDS, self._tick)
        log.debug("connection from %s", self.peer)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.core is None:  # refused at connect: nothing is read
            return memoryview(bytearray(1))
        return self.core.get_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        core = self.core
        if core is None:
            return
        for task in core.buffer_updated(nbytes, self.loop.time()):
            self._run(task)
        wanted = core.claim_wanted()
        if wanted is not None:
            self._claim(*wanted)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.output is not None:
            self.output.close()
        if self.core is not None:
            self._count_login(self.core)
            self.core.connection_lost()
            self._give_back(self.core)
            log.info("%s (%s) disconnected%s", self.core.initiator or "?", self.peer,
                     f": {exc}" if exc else "")
        self.server.connections.discard(self)

    # ---- claims: a login to a target one server at a time serves (an RBD image) ----------

    def _claim(self, device: ScsiDispatcher, holder: str) -> None:
        """Claim the target on a worker (it may wait for a dead owner's watch to expire); the
        login response waits, and so does reading (the initiator sends nothing meanwhile)."""
        self._set_reading(False)
        future = self.loop.run_in_executor(self.server.executor, device.claim, holder)
        future.add_done_callback(self._claimed)

    def _claimed(self, future: asyncio.Future[ClaimRefused | None]) -> None:
        core = self.core
        assert core is not None
        try:
            refusal = future.result()
        except Exception as exc:  # a claim that failed in an unforeseen way refuses the login
            log.exception("%s: claiming its target failed", self.peer)
            refusal = ClaimRefused(f"claiming the target failed: {exc}")
        for task in core.claim_done(refusal):
            self._run(task)
        self._give_back(core)
        self._set_reading(True)
        self._flush()

    def _give_back(self, core: TargetConnection) -> None:
        """Claims of sessions that ended are released on a worker (librbd calls wait)."""
        releases, core.releases = core.releases, []
        for device, holder in releases:
            try:
                self.server.executor.submit(_release, device, holder)
            except RuntimeError:  # shutting down: closing the stores gives every claim back
                pass

    def _count_login(self, core: TargetConnection) -> None:
        throttle = self.server.throttle
        if core.logged_in:
            throttle.succeeded(self.address)
        elif core.login.failed == LoginStatus.AUTH_FAILED and throttle.failed(self.address):
            log.warning("%s: %d failed logins in %.0f s: no logins from there for %.0f s", self.address,
                        throttle.limit, throttle.window, throttle.penalty)

    def _pressure(self, full: bool) -> None:
        # The initiator is not reading its responses: stop reading its requests.
        self._set_reading(not full)

    def _write_failed(self, exc: OSError) -> None:
        log.info("%s: send failed: %s", self.peer, exc.strerror)
        if self.transport is not None:
            self.transport.abort()

    # ---- work -------------------------------------------------------------

    def _run(self, task: ScsiTask) -> None:
        core = self.core
        assert core is not None and core.target is not None
        device = core.target.device
        started = time.monotonic()
        zero_copy = not core.params.data_digest  # a data digest needs the bytes in hand
        if device.may_block(task.lun, task.cdb, zero_copy):
            self._run_on_thread(task, zero_copy, started)
            return
        handoff = self.server.handoff
        assert handoff is not None
        handoff.expect()  # before execute: the answer may come back before it returns
        try:
            result = device.execute(task.lun, task.cdb, task.data, core.nexus, zero_copy, True,
                                    lambda answer: handoff.put(self._submitted_done, (task, answer, started),
                                                               self._flush))
        except WouldBlock:  # data not in memory: read it on a worker thread
            handoff.unexpect()
            self._run_on_thread(task, zero_copy, started)
            return
        except Exception:  # the command sets catch their own; this is the last guard
            log.exception("%s: command %s failed", self.peer, task.cdb.hex())
            result = check_condition(INTERNAL_TARGET_FAILURE)
        if result is PENDING:  # submitted: _submitted_done answers it
            return
        handoff.unexpect()
        self._complete(task, result, started)

    def _run_on_thread(self, task: ScsiTask, zero_copy: bool, started: float) -> None:
        core = self.core
        assert core is not None and core.target is not None
        future = self.loop.run_in_executor(self.server.executor, core.target.device.execute, task.lun, task.cdb,
                                           task.data, core.nexus, zero_copy)
        future.add_done_callback(lambda f, t=task: self._finished(t, f, started))

    def _submitted_done(self, task: ScsiTask, result: ScsiResult, started: float) -> None:
        """On the loop, in a handoff batch (which flushes this connection after it). The
        connection may be gone: the task was aborted then, and its answer is dropped."""
        if self.core is not None:
            self._complete(task, result, started)

    def _finished(self, task: ScsiTask, future: asyncio.Future[ScsiResult], started: float) -> None:
        if self.core is None:
            return
        try:
            result = future.result()
        except Exception:
            log.exception("%s: command %s failed", self.peer, task.cdb.hex())
            result = check_condition(INTERNAL_TARGET_FAILURE)
        self._complete(task, result, started)
        self._flush()

    def _find_target_stats(self) -> CommandStats | None:
        """The counters of the target this connection's session logged in to (per client, for the
        dashboard's history), found once: a session's target never changes after login."""
        session = self.core.session if self.core is not None else None
        if session is None or not session.target_name:
            return None
        self._target_stats = self.server.target_stats.setdefault(session.target_name, CommandStats())
        return self._target_stats

    def _complete(self, task: ScsiTask, result: ScsiResult, started: float) -> None:
        assert self.core is not None
        try:
            opcode, data_in, data_out = task.cdb[0] if task.cdb else 0, len(result.data), len(task.data or b"")
            seconds = time.monotonic() - started
            self.server.stats.record(opcode, data_in, data_out, result.status, seconds)
            per_target = self._target_stats if self._target_stats is not None else self._find_target_stats()
            if per_target is not None:
                per_target.record(opcode, data_in, data_out, result.status, seconds)
            self.core.complete(task, result)
        except Exception:  # a result we cannot send: a command left unanswered would hang the initiator
            log.exception("%s: the result of command %s could not be sent; the connection is dropped "
                          "(the initiator reconnects and retries)", self.peer, task.cdb.hex())
            if self.transport is not None:
                self.transport.abort()

    def _flush(self) -> None:
        core, transport, output = self.core, self.transport, self.output
        if core is None or transport is None or output is None or transport.is_closing():
            return
        out = core.data_to_send()
        if out:
            output.send(out)
        if core.closing:
            self._close_when_sent()

    def _tick(self) -> None:
        if self.core is None or self.transport is None or self.transport.is_closing():
            return
        self.core.tick(self.loop.time())
        self._flush()
        self._timer = self.loop.call_later(TICK_SECONDS, self._tick)

    def _set_reading(self, on: bool) -> None:
        already = self._paused_reading != on
        if self.transport is None or self.transport.is_closing() or already:
            return
        if on:
            self.transport.resume_reading()
        else:
            self.transport.pause_reading()
        self._paused_reading = not on

    def close(self) -> None:
        """Drop the connection (session reinstated elsewhere, or shutdown)."""
        if self.transport is not None and not self.transport.is_closing():
            self._flush()
            self._close_when_sent()

    def _close_when_sent(self) -> None:
        transport, output = self.transport, self.output
        if transport is None or output is None:
            return
        self._set_reading(False)
        # Our duplicate of the socket goes first: the connection ends (FIN) only
        # when the last descriptor of it is closed.
        output.when_drained(lambda: (output.close(), transport.close()))


def _release(device: ScsiDispatcher, holder: str) -> None:
    try:
        device.release(holder)
    except Exception:  # a worker's failure is only logged: the session is gone either way
        log.exception("releasing %s failed", holder)


def _unmapped(host: str) -> str:
    """::ffff:10.0.0.1 -> 10.0.0.1, so addresses read as admins wrote them."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return host
