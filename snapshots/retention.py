"""Which scheduled snapshots to keep: the last N, and the newest of each of the
last N days, ISO weeks and months that have one (grandfather-father-son)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable


@dataclass(frozen=True, slots=True)
class Keep:
    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    @property
    def unlimited(self) -> bool:
        return not (self.last or self.daily or self.weekly or self.monthly)


def _periods(stamp: float) -> dict[str, tuple[int, ...]]:
    local = time.localtime(stamp)
    year, week, _ = time.strftime("%G %V %u", local).split()
    return {"daily": (local.tm_year, local.tm_yday), "weekly": (int(year), int(week)),
            "monthly": (local.tm_year, local.tm_mon)}


def to_keep(snapshots: Iterable[tuple[int, float]], keep: Keep,
            periods: Callable[[float], dict[str, tuple[int, ...]]] = _periods) -> set[int]:
    """(id, created) pairs -> the ids retention keeps. Unlimited keeps everything."""
    newest_first = sorted(snapshots, key=lambda item: (item[1], item[0]), reverse=True)
    if keep.unlimited:
        return {snap_id for snap_id, _ in newest_first}
    kept = {snap_id for snap_id, _ in newest_first[: keep.last]}
    for kind, count in (("daily", keep.daily), ("weekly", keep.weekly), ("monthly", keep.monthly)):
        seen: set[tuple[int, ...]] = set()
        for snap_id, created in newest_first:
            period = periods(created)[kind]
            if period not in seen and len(seen) < count:
                seen.add(period)
                kept.add(snap_id)
    return kept
