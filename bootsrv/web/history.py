"""The dashboard's charts over the last hour: a bounded ring of samples kept in the server.

Every `[web] history_interval` seconds the sampler reads the counters the server already
keeps (the iSCSI command counters, in all and per client target; DHCP datagrams; TFTP
transfers; sessions) on the event loop, where they are plain integers, and turns the
difference from the previous reading into rates. Disk and snapshot space need stat()
calls and the snapshot catalog: that part runs on a worker thread, never on the loop.
`history` answers in columns, the shape a chart library draws from."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bootsrv.disktool import allocated_bytes
from target.iscsi.stats import CommandStats

if TYPE_CHECKING:
    from bootsrv.runtime.view import ApplianceView

log = logging.getLogger("bootsrv.web")
SPAN = 3600.0  # seconds of history kept
MAX_POINTS = 7200  # whatever the interval: the ring's bound
IO_SERIES = ("read", "write", "iops", "latency")  # bytes/s, bytes/s, commands/s, mean ms
TOTAL_SERIES = (*IO_SERIES, "sessions", "dhcp", "tftp", "disk_used", "snapshot_bytes", "free")
CLIENT_SERIES = (*IO_SERIES, "disk_used")
Io = tuple[int, int, int, float]  # bytes read, bytes written, commands, latency sum (s): all monotonic


def _io(stats: CommandStats | None) -> Io:
    if stats is None:
        return (0, 0, 0, 0.0)
    return stats.bytes_read, stats.bytes_written, sum(stats.commands.values()), stats.latency_sum


@dataclass(frozen=True)
class Reading:
    """The counters at one moment (read on the event loop)."""
    at: float  # monotonic
    total: Io
    clients: dict[str, Io]
    sessions: int
    dhcp: int | None
    tftp: int | None


@dataclass(frozen=True)
class Space:
    """Bytes on disk at one moment (read on a worker thread)."""
    disks: dict[str, int]  # disk or client name -> bytes its file takes
    snapshots: int
    free: int | None


def _rates(before: Io, after: Io, seconds: float) -> list[float | None]:
    read, written, commands, latency = (a - b for a, b in zip(after, before))
    if min(read, written, commands) < 0:  # counters started over (a target removed and added)
        read, written, commands, latency = after
    mean_ms = latency / commands * 1000 if commands else None
    return [read / seconds, written / seconds, commands / seconds, mean_ms]


def _delta(before: int | None, after: int | None, seconds: float) -> float | None:
    if before is None or after is None:
        return None
    return max(after - before, 0) / seconds


class History:
    """The ring: one row per sample, `total` and per-client values in the series' order."""

    def __init__(self, interval: float, span: float = SPAN) -> None:
        self.interval = interval
        self.rows: deque[tuple[float, list[float | None], dict[str, list[float | None]]]] = deque(
            maxlen=max(2, min(MAX_POINTS, round(span / interval))))

    def add(self, before: Reading, after: Reading, space: Space) -> None:
        seconds = max(after.at - before.at, 1e-6)
        total = [*_rates(before.total, after.total, seconds), after.sessions,
                 _delta(before.dhcp, after.dhcp, seconds), _delta(before.tftp, after.tftp, seconds),
                 sum(space.disks.values()), space.snapshots, space.free]
        clients = {name: [*_rates(before.clients.get(name, io), io, seconds), space.disks.get(name)]
                   for name, io in after.clients.items()}
        self.rows.append((time.time(), total, clients))

    def columns(self, since: float | None = None) -> dict[str, Any]:
        """The samples newer than `since` (all when None) as columns; a client absent from a
        sample (not configured then) has None there."""
        rows = [row for row in list(self.rows) if since is None or row[0] > since]  # one copy: the loop appends
        names = sorted({name for _, _, clients in rows for name in clients})
        return {
            "interval": self.interval, "span": self.interval * (self.rows.maxlen or 0),
            "t": [t for t, _, _ in rows],  # as kept: a reader's `since` is one of these
            "total": {series: [total[i] for _, total, _ in rows] for i, series in enumerate(TOTAL_SERIES)},
            "clients": {name: {series: [c[name][i] if name in c else None for _, _, c in rows]
                               for i, series in enumerate(CLIENT_SERIES)} for name in names},
        }


class HistorySampler:
    """Fills a History every interval until stopped; a failed sample is logged and skipped."""

    def __init__(self, view: "ApplianceView", history: History) -> None:
        self.view = view
        self.history = history
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="history")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        before: Reading | None = None
        failing = False
        next_at = loop.time()
        while True:
            try:
                after = self._read()
                if before is not None:  # rates need two readings
                    space = await loop.run_in_executor(None, self._space, *self._space_args())
                    self.history.add(before, after, space)
                before, failing = after, False
            except Exception:  # the charts miss a point; the server goes on (logged once per streak)
                if not failing:
                    log.exception("dashboard history: a sample failed")
                failing = True
            # After a stall the next sample comes one interval on, not in a burst of points a few
            # milliseconds apart (spikes in the rates).
            next_at = max(next_at + self.history.interval, loop.time())
            await asyncio.sleep(max(next_at - loop.time(), 0))

    def _read(self) -> Reading:
        view = self.view
        per_target = view.target_stats()
        return Reading(time.monotonic(), _io(view.command_stats()),
                       {name: _io(per_target.get(iqn)) for name, iqn in view.client_targets().items()},
                       len(view.sessions()), view.dhcp_requests(), view.tftp_transfers())

    def _space_args(self) -> tuple[list[tuple[str, Path]], Path]:
        engine = self.view.engine
        return [(name, volume.path) for name, volume in engine.volumes.items()], self.view.config.server.state_dir

    def _space(self, disks: list[tuple[str, Path]], state_dir: Path) -> Space:
        engine, used, held = self.view.engine, {}, 0
        for name, path in disks:
            try:
                used[name] = allocated_bytes(path)
            except OSError:  # not a local file (rbd:), or gone since
                pass
            held += engine.usage(name)[1]
        try:
            free: int | None = shutil.disk_usage(state_dir).free
        except OSError:
            free = None
        return Space(used, held, free)
