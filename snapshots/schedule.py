"""Scheduled snapshots: take, export, prune, on cron expressions (APScheduler 3).

APScheduler keeps no memory across restarts here (no job store): the catalog
records each schedule's last run, and at start a run missed while the server was
down is made once if it is no older than the schedule's grace window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger  # trigger objects, not names: no entry-point lookups

from snapshots import rbdsnaps
from snapshots.engine import SnapshotEngine
from snapshots.export import export_snapshot
from snapshots.retention import Keep, to_keep

log = logging.getLogger("bootsrv.schedule")


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    cron: str  # five fields: minute hour day-of-month month day-of-week
    disks: tuple[str, ...] = ("*",)  # disk or client names, shell patterns allowed
    export: str = "none"  # "none" | "full" | "incremental"
    keep: Keep = Keep()
    grace: float = 6 * 3600  # a run missed by less than this is made at start
    full_every: int = 7  # an incremental chain this long starts again with a full export
    wake: bool = False  # wake the disks' clients first (SnapshotScheduler.wake_first) and wait for them
    boot_wait: float = 600.0  # seconds to wait for woken clients to log in before snapshotting anyway

    def trigger(self, timezone: Any = None) -> CronTrigger:
        return CronTrigger.from_crontab(self.cron, timezone=timezone)


def valid_cron(expression: str) -> str | None:
    """None if APScheduler accepts it, else its complaint."""
    try:
        CronTrigger.from_crontab(expression, timezone=dt.timezone.utc)
    except ValueError as exc:
        return str(exc)
    return None


def missed_run(schedule: Schedule, last_run: float | None, now: float, timezone: Any = None) -> float | None:
    """The latest fire time after `last_run` and not after `now`, if within the grace window."""
    if last_run is None:
        return None
    trigger = schedule.trigger(timezone)
    tz = trigger.timezone
    latest = None
    moment = dt.datetime.fromtimestamp(last_run, tz) + dt.timedelta(seconds=1)
    for _ in range(100_000):
        fire = trigger.get_next_fire_time(None, moment)
        if fire is None or fire.timestamp() > now:
            break
        latest = fire.timestamp()
        moment = fire + dt.timedelta(seconds=1)
    if latest is not None and now - latest <= schedule.grace:
        return latest
    return None


def latest_tick(schedule: Schedule, now: float, timezone: Any = None) -> float:
    """The schedule's fire time a run at `now` belongs to: the latest one not after `now` (within
    a day; else `now`'s minute). Nodes that run the same schedule agree on it."""
    return missed_run(dataclasses.replace(schedule, grace=24 * 3600), now - 24 * 3600, now, timezone) or now // 60 * 60


def is_shared(path: Path) -> bool:
    """A disk every node of a cluster serves (an RBD image), whose schedule one node runs."""
    return str(path).startswith("rbd:")


# (schedule name, tick) -> whether this node takes that run of the shared disks (the leader).
Leader = Callable[[str, float], bool]
# (schedule, its disks this run) -> once the clients of those disks are up, or given up on.
WakeFirst = Callable[[Schedule, list[str]], None]


@dataclass
class SnapshotScheduler:
    engine: SnapshotEngine
    schedules: tuple[Schedule, ...]
    export_dir: Path | None
    clock: Callable[[], float] = time.time
    leader: Leader | None = None  # several nodes: only the leader snapshots shared (RBD) disks
    wake_first: WakeFirst | None = None  # for schedules with `wake`: the appliance wakes the clients
    _scheduler: BackgroundScheduler | None = None
    _running: set[str] = field(default_factory=set)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._scheduler = BackgroundScheduler()
        now = self.clock()
        for schedule in self.schedules:
            self._scheduler.add_job(self.run, schedule.trigger(self._scheduler.timezone), args=[schedule],
                                    id=schedule.name, name=schedule.name, misfire_grace_time=int(schedule.grace),
                                    coalesce=True, max_instances=1)
            record = self.engine.catalog.schedule_run(schedule.name)
            if record is None:  # from now on, a run missed while down can be told
                self.engine.catalog.record_schedule_run(schedule.name, now, result="never run")
            missed = missed_run(schedule, record[0] if record else None, now, self._scheduler.timezone)
            if missed is not None:
                log.warning("schedule %s: the run due at %s was missed while bootsrv was down; running it now",
                            schedule.name, time.strftime("%Y-%m-%d %H:%M", time.localtime(missed)))
                self._scheduler.add_job(self.run, DateTrigger(), args=[schedule], id=f"{schedule.name}.missed")
        self._scheduler.start()

    def stop(self, wait: bool = True) -> None:
        """wait: until a running job ends (it gives up soon when the engine is stopping)."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)

    def describe(self) -> list[dict[str, Any]]:
        rows = []
        for schedule in self.schedules:
            job = self._scheduler.get_job(schedule.name) if self._scheduler else None
            record = self.engine.catalog.schedule_run(schedule.name)
            rows.append({
                "name": schedule.name, "cron": schedule.cron, "disks": list(schedule.disks),
                "export": schedule.export, "keep": {"last": schedule.keep.last, "daily": schedule.keep.daily,
                                                    "weekly": schedule.keep.weekly, "monthly": schedule.keep.monthly},
                "last_run": record[0] if record and record[2] != "never run" else None,
                "last_finished": record[1] if record else None,
                "last_result": record[2] if record else "",
                "next_run": job.next_run_time.timestamp() if job is not None and job.next_run_time else None,
                "running": schedule.name in self._running, "wake": schedule.wake,
            })
        return rows

    def disks_of(self, schedule: Schedule) -> list[str]:
        return [name for name in sorted(self.engine.volumes)
                if any(fnmatchcase(name, pattern) for pattern in schedule.disks)
                and _can_snapshot(self.engine.volumes[name].path)]

    def runs_here(self, schedule: Schedule, now: float, by_hand: bool = False) -> list[str]:
        """The disks this node snapshots for a run at `now`: its own disks, and the shared (RBD)
        ones only if it leads that tick (several nodes run the same schedule; one takes it).
        A run by hand is a tick of its own (`now`): the admin asked for a snapshot now, and
        gets one, from the leader; only the cron's fire times are shared by the nodes."""
        disks = self.disks_of(schedule)
        shared = [name for name, volume in sorted(self.engine.volumes.items()) if is_shared(volume.path)
                  and any(fnmatchcase(name, pattern) for pattern in schedule.disks)]
        if not shared or self.leader is None:
            return disks
        own = [disk for disk in disks if disk not in shared]
        tick = now if by_hand else latest_tick(schedule, now, self._timezone())
        if not self.leader(schedule.name, tick):
            return own
        return own + shared

    def _timezone(self) -> Any:
        return self._scheduler.timezone if self._scheduler is not None else None

    def run(self, schedule: Schedule, by_hand: bool = False) -> str:
        with self._guard:
            if schedule.name in self._running:
                return "already running"
            self._running.add(schedule.name)
        started = self.clock()
        self.engine.catalog.record_schedule_run(schedule.name, started, result="running")
        failures = []
        try:
            disks = self.runs_here(schedule, started, by_hand)
            if schedule.wake and disks and self.wake_first is not None:
                self.wake_first(schedule, disks)
            for disk in disks:
                try:
                    self._run_disk(schedule, disk)
                except Exception as exc:  # one disk's failure must not stop the others
                    log.error("schedule %s: disk %s: %s", schedule.name, disk, exc)
                    failures.append(f"{disk}: {exc}")
        finally:
            with self._guard:
                self._running.discard(schedule.name)
        result = "ok" if not failures else f"{len(failures)} failed: " + "; ".join(failures)
        self.engine.catalog.record_schedule_run(schedule.name, started, self.clock(), result)
        log.info("schedule %s finished: %s", schedule.name, result)
        return result

    def _run_disk(self, schedule: Schedule, disk: str) -> None:
        origin = f"schedule:{schedule.name}"
        snap = self.engine.create(disk, label=schedule.name, origin=origin)
        if schedule.export != "none":
            if self.export_dir is None:
                raise ValueError("snapshots.export_dir is not set")
            dest = self.export_dir / disk
            base = self._incremental_base(schedule, disk) if schedule.export == "incremental" else None
            export_snapshot(self.engine, snap.id, dest, "vhd", incremental_from=base)
        mine = [s for s in self.engine.catalog.snapshots(disk) if s.origin == origin and s.state == "ready"]
        kept = to_keep(((s.id, s.created) for s in mine), schedule.keep)
        for old in mine:
            if old.id in kept:
                continue
            if old.mount_iscsi or old.mount_local:
                log.warning("schedule %s: snapshot %d of %s is mounted; kept past its retention", schedule.name,
                            old.id, disk)
                continue
            self.engine.delete(old.id)

    def _incremental_base(self, schedule: Schedule, disk: str) -> int | None:
        """The latest VHD export of this disk still on disk, unless its chain is long enough."""
        exports = [e for e in self.engine.catalog.exports(disk=disk) if e.format == "vhd" and Path(e.path).exists()]
        if not exports:
            return None
        latest = exports[-1]
        by_path = {e.path: e for e in exports}
        depth, current = 1, latest
        while current.base and current.base in by_path:
            depth, current = depth + 1, by_path[current.base]
        return None if depth >= schedule.full_every else latest.snapshot


def _can_snapshot(path: Path) -> bool:
    """VHD disks and RBD images (a raw file has no layers to freeze)."""
    return path.suffix.lower() == ".vhd" or rbdsnaps.is_rbd(path)
