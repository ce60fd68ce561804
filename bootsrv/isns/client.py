"""The iSNS client service: registers this server's entity, portals and targets with an
iSNS server ([iscsi] isns), keeps the registration alive, follows target changes, and
deregisters at stop.

One TCP connection at a time, one request in flight. On (re)connecting the entity is
registered whole with the Replace flag (a restarted server, or one that expired us, gets
everything again); after that, target changes are sent as differences, so that initiators
watching state changes see only what changed. A query of our own entity every
`keepalive` seconds refreshes the registration period (RFC 4171 6.2.6: any message does)
and keeps open-isns from closing an idle connection; an answer that the entity is gone
registers it again. An unreachable or refusing server is logged and retried with backoff:
iSNS is discovery, serving goes on without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
from typing import Callable

from bootsrv.isns.messages import ClientConnection, Node, Portal, Reply, entity_attrs, node_groups
from bootsrv.isns.wire import Attr, Flag, Function, ProtocolError, Status, Tag, string

log = logging.getLogger("bootsrv.isns")

CONNECT_TIMEOUT = 5.0
CALL_TIMEOUT = 10.0
MAX_UNSENT = 1 << 20  # bytes of answers the server has not read before we drop the connection
RETRY_FIRST, RETRY_MAX = 0.5, 30.0
KEEPALIVE_MAX = 60.0  # open-isns drops connections idle for 300 s
SETTLE = 0.2  # a reload adds or removes many targets at once: one update for them all
WILDCARDS = ("", "0.0.0.0", "::")


class Refused(Exception):
    """The server answered a request with an error status."""


class IsnsRegistrar:
    name = "isns"

    def __init__(self, host: str, port: int, eid: str, portals: Callable[[], list[tuple[str, int]]],
                 targets: Callable[[], list[Node]]) -> None:
        self.host, self.port, self.eid = host, port, eid
        self._portals, self._targets = portals, targets
        self.registered: dict[str, Node] = {}  # by lower-case name: what the server holds of ours
        self.period: int | None = None  # the server's registration period, from its replies
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failure: str | None = None
        self._outage: str | None = None
        self._conn: ClientConnection | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future[Reply]] = {}

    @property
    def server(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    # ---- Service ------------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once: the server may be down now and come later."""
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run())

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is None:
            return
        if not self.registered:  # nothing to take back: a connect under way need not finish
            self._task.cancel()
        try:  # the run loop deregisters the entity before it ends
            await asyncio.wait_for(asyncio.shield(self._task), CALL_TIMEOUT + 1)
        except (asyncio.TimeoutError, Exception):  # noqa: BLE001 (died() reports a failure already)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def died(self) -> str | None:
        return self._failure

    def changed(self) -> None:
        """Targets were added, removed or changed (from any thread)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._changed.set)

    # ---- the run loop -------------------------------------------------------------------

    async def _run(self) -> None:
        delay = RETRY_FIRST
        try:
            while not self._stopping.is_set():
                try:
                    await self._session()
                    delay = RETRY_FIRST
                except (OSError, EOFError, ProtocolError, Refused, asyncio.TimeoutError) as exc:
                    if self._outage is None:  # it was registered: a new outage starts with short retries
                        delay = RETRY_FIRST
                    self._lost(exc, delay)
                except Exception as exc:  # noqa: BLE001  what the server sent that we did not foresee:
                    # logged whole and retried like an outage; iSNS is never worth stopping the disks for
                    log.exception("iSNS session with %s failed", self.server)
                    self._lost(exc, delay)
                finally:
                    self._close()
                if not self._stopping.is_set():
                    await self._wait((self._stopping,), delay)
                    delay = min(delay * 2, RETRY_MAX)
        except Exception as exc:  # a bug of ours: never a silent end (serve stops bootsrv)
            log.exception("iSNS client failed")
            self._failure = f"the iSNS client failed ({type(exc).__name__}: {exc}); stopping bootsrv"

    def _lost(self, exc: BaseException, delay: float) -> None:
        why = str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.errno:
            why = os.strerror(exc.errno)
        if self._stopping.is_set():
            log.warning("iSNS server %s: %s; the registration stays until it expires there", self.server, why)
        elif why != self._outage:  # one warning per outage, not one per retry
            log.warning("iSNS server %s: %s; retrying (every %.0f s at most)", self.server, why, RETRY_MAX)
        else:
            log.debug("iSNS server %s: %s; retrying in %.1f s", self.server, why, delay)
        self._outage = why

    async def _session(self) -> None:
        reader, self._writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port),
                                                      CONNECT_TIMEOUT)
        self._conn = ClientConnection()
        self.registered = {}
        local = self._writer.get_extra_info("sockname")[0]
        portals = resolve_portals(self._portals(), local)
        if not portals:
            log.warning("iSNS: no portal to register: the iSCSI portals listen on a wildcard of another "
                        "address family than %s, which reaches %s", local, self.server)
        closed = asyncio.get_running_loop().create_task(self._read(reader))
        try:
            self._changed.clear()
            await self._register_all(portals)
            if self.registered:
                log.info("iSNS: registered with %s as entity %s: %d portal(s), %d target(s)", self.server,
                         self.eid, len(portals), len(self.registered))
            else:
                log.info("iSNS: connected to %s; no target to register yet", self.server)
            self._outage = None
            while not self._stopping.is_set():
                await self._wait((self._changed, self._stopping), self.keepalive, closed)
                if closed.done():
                    raise closed.exception() or EOFError("the server closed the connection")
                if self._stopping.is_set():
                    break
                if self._changed.is_set():
                    await asyncio.sleep(SETTLE)
                    self._changed.clear()
                    await self._update(portals)
                else:
                    await self._keepalive(portals)
            await self._deregister()
        finally:
            closed.cancel()

    @property
    def keepalive(self) -> float:
        return min(KEEPALIVE_MAX, max(1.0, self.period / 3)) if self.period else KEEPALIVE_MAX

    async def _wait(self, events: tuple[asyncio.Event, ...], timeout: float,
                    also: asyncio.Future[None] | None = None) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        await asyncio.wait([*waits, *([also] if also else [])], timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()

    def _close(self) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.cancel()
        self._waiting.clear()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _read(self, reader: asyncio.StreamReader) -> None:
        """Replies to the requests waiting for them; the server's own requests answered."""
        assert self._conn is not None and self._writer is not None
        try:
            while data := await reader.read(65536):
                replies, answers = self._conn.receive(data)
                if answers:
                    self._writer.write(answers)
                    if self._writer.transport.get_write_buffer_size() > MAX_UNSENT:
                        raise ProtocolError("the server sends requests but does not read our answers")
                for reply in replies:
                    future = self._waiting.pop(reply.xid, None)
                    if future is not None and not future.done():
                        future.set_result(reply)
            raise EOFError("the server closed the connection")
        except Exception as exc:  # the request waiting learns it at once, not at its timeout
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(exc)
            raise

    async def _call(self, function: Function, source: str, keys: list[Attr], operating: list[Attr],
                    flags: int = 0, accept: tuple[int, ...] = (Status.SUCCESS,)) -> Reply:
        assert self._conn is not None and self._writer is not None
        xid, data = self._conn.request(function, source, keys, operating, flags)
        future = self._waiting[xid] = asyncio.get_running_loop().create_future()
        self._writer.write(data)
        await self._writer.drain()
        reply = await asyncio.wait_for(future, CALL_TIMEOUT)
        if reply.status not in accept:
            raise Refused(f"{function.name} refused: {Status.describe(reply.status)}")
        period = next((a for a in (*reply.keys, *reply.operating) if a.tag == Tag.REGISTRATION_PERIOD
                       and len(a.value) == 4), None)
        if period is not None:
            self.period = period.uint32
        return reply

    # ---- registration -------------------------------------------------------------------

    def _wanted(self) -> dict[str, Node]:
        return {n.name.lower(): n for n in sorted(self._targets())}

    @property
    def _key(self) -> list[Attr]:
        return [string(Tag.ENTITY_IDENTIFIER, self.eid)]

    async def _register_all(self, portals: list[Portal]) -> None:
        """The entity whole, replacing whatever the server held under its name."""
        wanted = self._wanted()
        if not wanted:
            return  # no entity without a node to name as the source
        groups = node_groups(list(wanted.values()))
        source = groups[0][0].name
        operating = entity_attrs(self.eid) + [a for p in portals for a in p.attrs()]
        for index, group in enumerate(groups):
            await self._call(Function.DEV_ATTR_REG, source, self._key,
                             (operating if index == 0 else []) + [a for n in group for a in n.attrs()],
                             Flag.REPLACE if index == 0 else 0)
            self.registered.update((n.name.lower(), n) for n in group)

    async def _update(self, portals: list[Portal]) -> None:
        """What changed since the last registration: new and changed targets registered,
        removed ones deregistered (the entity with the last one)."""
        wanted = self._wanted()
        if not self.registered:
            await self._register_all(portals)
            return
        if not wanted:
            await self._deregister()
            return
        added = [n for key, n in wanted.items() if self.registered.get(key) != n]
        removed = [n for key, n in self.registered.items() if key not in wanted]
        source = next(iter(self.registered.values())).name  # still registered while we add
        for group in node_groups(added):
            await self._call(Function.DEV_ATTR_REG, source, self._key, [a for n in group for a in n.attrs()])
            self.registered.update((n.name.lower(), n) for n in group)
        source = next(iter(wanted.values())).name  # registered by now, and staying
        for group in node_groups(removed):
            await self._call(Function.DEV_DEREG, source, [], [string(Tag.ISCSI_NAME, n.name) for n in group])
            for node in group:
                self.registered.pop(node.name.lower(), None)
        if added or removed:
            log.info("iSNS: %d target(s) registered, %d deregistered", len(added), len(removed))

    async def _keepalive(self, portals: list[Portal]) -> None:
        if not self.registered:
            return
        source = next(iter(self.registered.values())).name
        reply = await self._call(Function.DEV_ATTR_QRY, source, self._key, [Attr(Tag.REGISTRATION_PERIOD)],
                                 accept=(Status.SUCCESS, Status.NO_SUCH_ENTRY, Status.SOURCE_UNKNOWN))
        if not reply.ok or not reply.operating:
            log.warning("iSNS server %s no longer holds entity %s: registering it again", self.server, self.eid)
            self.registered = {}
            await self._register_all(portals)

    async def _deregister(self) -> None:
        if not self.registered:
            return
        source = next(iter(self.registered.values())).name
        await self._call(Function.DEV_DEREG, source, [], self._key)
        self.registered = {}
        log.info("iSNS: entity %s deregistered from %s", self.eid, self.server)


def resolve_portals(bound: list[tuple[str, int]], local: str) -> list[Portal]:
    """The portals to register: a wildcard listener is registered at the address this host
    reaches the iSNS server from (as tgt does), if it is of the same family."""
    local_ip = ipaddress.ip_address(local.split("%", 1)[0])
    if local_ip.version == 6 and local_ip.ipv4_mapped:
        local_ip = local_ip.ipv4_mapped
    portals = []
    for host, port in bound:
        if host in WILDCARDS:
            if (host == "::") != (local_ip.version == 6) and host != "":
                continue
            host = str(local_ip)
        portal = Portal(host.split("%", 1)[0], port)
        if portal not in portals:
            portals.append(portal)
    return portals
