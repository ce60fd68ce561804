"""[snapshots] and its [[snapshots.schedule]] tables: where exports go, who may attach
mounted snapshots, the free-space floor, and the cron schedules.

`snapshots.schedule` (the `Schedule` type and APScheduler's cron parser, which also
pull in the VHD stack) is imported only when a schedule is read, so importing the
configuration model stays light; a file without schedules never loads APScheduler here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Collection

from bootsrv.config.model import SnapshotsConfig, default_of
from bootsrv.config.modes import ExportMode, spelled
from bootsrv.config.names import NAME_RE
from bootsrv.config.reader import Section, parse_duration, parse_size
from bootsrv.config.sections.targets import initiator_names
from snapshots.retention import Keep

if TYPE_CHECKING:
    from snapshots.schedule import Schedule

DEFAULTS = SnapshotsConfig()
MAX_BOOT_WAIT = 3600  # seconds: a schedule that waits longer for its clients holds its backup back all night


def _keep(sub: Section) -> Keep:
    table = sub.sub("keep", "{ last = N, daily = N, ... }")
    counts = {}
    for kind in ("last", "daily", "weekly", "monthly"):
        value = table.get(kind, int, "a count of 0 or more", default_of(Keep, kind))
        if value < 0:
            table.fail(kind, "a count of 0 or more", value)
        counts[kind] = value
    table.done()
    return Keep(**counts)


def name_and_cron(sub: Section, default: str, taken: Collection[str], example: str) -> tuple[str, str]:
    """A schedule's unique name and its cron expression (as APScheduler reads it), for the
    snapshot and the wake schedules."""
    from snapshots.schedule import valid_cron  # APScheduler: only when there is a schedule

    name = sub.get("name", str, "a schedule name", default)
    if not NAME_RE.match(name) or name in taken:
        sub.fail("name", "a unique name of letters, digits, '.', '_' or '-'", name)
    cron = sub.get("cron", str, f'a cron expression like "{example}"', required=True)
    problem = valid_cron(cron)
    if problem:
        sub.fail("cron", f'five cron fields like "{example}" (minute hour day month weekday): {problem}', cron)
    return name, cron


def _schedule(sub: Section, index: int, names: Collection[str], exports: bool, taken: list[Schedule]) -> Schedule:
    # APScheduler (see the module docstring); the defaults are Schedule's own.
    from snapshots.schedule import Schedule

    name, cron = name_and_cron(sub, f"schedule{index + 1}", [s.name for s in taken], "0 2 * * *")
    disks = sub.get("disks", list, 'a list of disk or client names, or ["*"]', default_of(Schedule, "disks"))
    for disk in disks:
        if not isinstance(disk, str) or (disk not in names and not any(c in disk for c in "*?[")):
            sub.fail("disks", f"disk or client names ({', '.join(sorted(names)) or 'none defined'}) or \"*\"", disk)
    export = sub.choice("export", ExportMode, spelled(ExportMode), default_of(Schedule, "export"))
    if export != ExportMode.NONE and not exports:
        sub.fail("export", "snapshots.export_dir to be set (exports are written there)")
    keep = _keep(sub)
    grace = parse_duration(sub.get("grace", (int, str), 'a duration like "6h"', default_of(Schedule, "grace")))
    if grace is None:
        sub.fail("grace", 'a duration like "6h"', sub.table.get("grace"))
    full_every = sub.get("full_every", int, "a count of 1 or more", default_of(Schedule, "full_every"))
    if full_every < 1:
        sub.fail("full_every", "a count of 1 or more", full_every)
    wake = sub.get("wake", bool, "true or false (wake the clients first)", default_of(Schedule, "wake"))
    boot_wait = parse_duration(sub.get("boot_wait", (int, str), 'a duration like "10m"',
                                       default_of(Schedule, "boot_wait")))
    if boot_wait is None or boot_wait > MAX_BOOT_WAIT:
        sub.fail("boot_wait", 'a duration like "10m", at most "1h"', sub.table.get("boot_wait"))
    sub.done()
    return Schedule(name, cron, tuple(disks), export, keep, grace, full_every, wake, boot_wait)


def parse(top: Section, base: Path, names: Collection[str]) -> SnapshotsConfig:
    """`names`: the disk and client names a schedule may list."""
    section = top.sub("snapshots", "a [snapshots] table")
    export_dir = section.get("export_dir", str, "a folder path", None)
    initiators = initiator_names(section, "iqn.1991-05.com.microsoft:backup01")
    min_free_text = section.get("min_free", (int, str), 'a size like "1GiB" (0: no floor)', DEFAULTS.min_free)
    min_free = 0 if min_free_text in (0, "0") else parse_size(min_free_text)
    if min_free is None:
        section.fail("min_free", 'a size like "1GiB" (0: no floor)', min_free_text)
    schedules: list[Schedule] = []
    for index, sub in enumerate(section.entries("schedule", "[[snapshots.schedule]] tables")):
        schedules.append(_schedule(sub, index, names, export_dir is not None, schedules))
    section.done()
    return SnapshotsConfig((base / export_dir).resolve() if export_dir else None, initiators, tuple(schedules),
                           min_free)
