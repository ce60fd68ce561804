"""Waking clients on a schedule: `[[wake.schedule]]` cron jobs, and the snapshot schedules'
wake-first (`wake = true`): wake the schedule's clients, then wait until each has booted
(its iSCSI session is logged in) or `boot_wait` has passed, and go on either way, logging
who did not come up.

Both run on threads, never on the event loop: the cron jobs on APScheduler's background
thread, the wait on the snapshot schedule's own job thread (or the worker of `schedule run`).
"""

from __future__ import annotations

import logging
import time
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Callable, Mapping

from bootsrv.config import Config
from bootsrv.config.model import WakeSchedule
from bootsrv.wake.clients import Sleeper, wake
from bootsrv.wake.send import WakeError

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from bootsrv.runtime.view import ApplianceView
    from snapshots.schedule import Schedule

log = logging.getLogger("bootsrv.wake")
POLL = 0.5  # seconds between looks at the sessions while waiting for clients to boot
MISFIRE_GRACE = 300  # seconds late a wake may still fire (a busy box): waking late beats not waking


def run_schedule(config: Config, sleepers: Mapping[str, Sleeper], name: str) -> list[dict[str, str]]:
    """Wake whom the [[wake.schedule]] `name` wakes, now; what was sent."""
    schedule = next((s for s in config.wake.schedules if s.name == name), None)
    if schedule is None:
        names = ", ".join(s.name for s in config.wake.schedules) or "none configured"
        raise WakeError(f"no wake schedule named {name!r} (wake schedules: {names})")
    if schedule.image:
        request: dict[str, Any] = {"image": schedule.image}
    else:
        request = {"names": [n for n in sorted(sleepers) if any(fnmatchcase(n, p) for p in schedule.clients)]}
    if not request.get("names", True):
        log.info("wake schedule %s: no client matches %s", name, ", ".join(schedule.clients))
        return []
    sent = wake(config, sleepers, request)
    log.info("wake schedule %s: woke %d client(s)", name, len(sent))
    return sent


class WakeScheduler:
    """The [[wake.schedule]] cron jobs, as a service of the appliance (started, stopped, and
    started again by a reload that changes them)."""

    name = "wake schedules"

    def __init__(self, view: "ApplianceView") -> None:
        self.view = view
        self._scheduler: BackgroundScheduler | None = None
        self._schedules: tuple[WakeSchedule, ...] = ()

    async def start(self) -> None:
        self.restart()

    def restart(self) -> None:
        """(Again after a reload: jobs of schedules gone or changed stop, the new ones start.)"""
        self._shutdown()
        self._schedules = self.view.config.wake.schedules
        if not self._schedules:
            return
        from apscheduler.schedulers.background import BackgroundScheduler  # only when there are schedules
        from apscheduler.triggers.cron import CronTrigger

        self._scheduler = BackgroundScheduler()
        zone = self._scheduler.timezone  # local time, as the snapshot schedules'
        for schedule in self._schedules:
            self._scheduler.add_job(self._fire, CronTrigger.from_crontab(schedule.cron, timezone=zone),
                                    args=[schedule.name], id=schedule.name, name=schedule.name, coalesce=True,
                                    max_instances=1, misfire_grace_time=MISFIRE_GRACE)
        self._scheduler.start()
        for name, when in self.next_runs().items():
            log.info("wake schedule %s: next run %s", name,
                     time.strftime("%Y-%m-%d %H:%M", time.localtime(when)) if when else "never")

    def next_runs(self) -> dict[str, float | None]:
        """Each schedule's next fire time (Unix time), for the log and the tests."""
        jobs = {job.id: job for job in self._scheduler.get_jobs()} if self._scheduler else {}
        return {s.name: jobs[s.name].next_run_time.timestamp() if s.name in jobs else None for s in self._schedules}

    def changed(self) -> bool:
        return self.view.config.wake.schedules != self._schedules

    def _fire(self, name: str) -> None:
        try:
            run_schedule(self.view.config, self.view.sleepers(), name)
        except Exception as exc:  # a bad interface, a send error: logged, the next run tries again
            log.error("wake schedule %s: %s", name, exc)

    def _shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None

    async def stop(self) -> None:
        self._shutdown()

    def died(self) -> str | None:
        return None


def wait_until_booted(view: "ApplianceView", why: str, names: list[str], timeout: float,
                      clock: Callable[[], float] = time.monotonic) -> list[str]:
    """Wake the clients among `names` that are not logged in, and wait until they are, at most
    `timeout` seconds; returns those that did not come up. Names that are no clients ([[disk]]s)
    are left out. Never raises: the snapshots that follow are taken either way."""
    sleepers, online = view.sleepers(), view.online()
    asleep = [name for name in names if name in sleepers and name not in online]
    # A disk that starts over at power-on (reset_on_boot, or a reset to a newer image version)
    # would lose what the snapshot is taken to keep: such clients are left asleep.
    starting_over = [name for name in asleep if view.resets_at_boot(name)]
    if starting_over:
        log.warning("%s: not waking %s: their disks start over when they power on; their snapshots are "
                    "taken as the disks are", why, ", ".join(starting_over))
        asleep = [name for name in asleep if name not in starting_over]
    if not asleep:
        return []
    try:
        wake(view.config, sleepers, {"names": asleep})
    except WakeError as exc:
        log.error("%s: cannot wake %s: %s", why, ", ".join(asleep), exc)
        return asleep
    log.info("%s: woke %s; waiting up to %.0fs for them to boot", why, ", ".join(asleep), timeout)
    deadline = clock() + timeout
    missing = asleep
    while True:
        online = view.online()
        missing = [name for name in missing if name not in online]
        if not missing or clock() >= deadline or view.engine.stopping.wait(POLL):
            break
    if missing:
        log.warning("%s: did not come up within %.0fs: %s; going on without them", why, timeout, ", ".join(missing))
    else:
        log.info("%s: %s booted (logged in)", why, ", ".join(asleep))
    return missing


def wake_first(view: "ApplianceView") -> Callable[["Schedule", list[str]], None]:
    """The snapshot scheduler's hook for schedules with `wake = true`."""
    def hook(schedule: "Schedule", disks: list[str]) -> None:
        wait_until_booted(view, f"schedule {schedule.name}", disks, schedule.boot_wait)
    return hook
