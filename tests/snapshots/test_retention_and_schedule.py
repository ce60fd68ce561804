"""Retention (grandfather-father-son) and missed-run detection, on an injected clock."""

from __future__ import annotations

import datetime as dt
import time

from hypothesis import given, strategies as st

from snapshots.retention import Keep, to_keep
from snapshots.schedule import Schedule, missed_run, valid_cron

UTC = dt.timezone.utc
DAY = 86400


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def utc_periods(stamp: float) -> dict[str, tuple[int, ...]]:
    moment = dt.datetime.fromtimestamp(stamp, UTC)
    year, week, _ = moment.isocalendar()
    return {"daily": (moment.year, moment.timetuple().tm_yday), "weekly": (year, week),
            "monthly": (moment.year, moment.month)}


def test_nightly_snapshots_for_a_year_keep_the_configured_counts():
    start = at("2026-01-01T02:00:00")
    nightly = [(n, start + n * DAY) for n in range(365)]
    kept = to_keep(nightly, Keep(last=3, daily=7, weekly=4, monthly=6), utc_periods)
    newest = [n for n, _ in nightly][-7:]
    assert set(newest) <= kept  # daily 7 covers the last 7 nights (last 3 among them)
    # 7 nights (Dec 25-31); two of the 4 weeks end inside them, so 2 more Sundays (Dec 13, 20);
    # December's newest is Dec 31, so 5 more month-ends (Jul-Nov).
    assert len(kept) == 7 + 2 + 5
    assert {353, 346, 333, 303, 272, 242, 211} <= kept
    monthly = {utc_periods(t)["monthly"] for n, t in nightly if n in kept}
    assert len(monthly) == 6


@given(st.lists(st.floats(0, 400 * DAY), max_size=40, unique=True), st.integers(0, 5), st.integers(0, 5),
       st.integers(0, 5), st.integers(0, 5))
def test_retention_properties(times, last, daily, weekly, monthly):
    snaps = list(enumerate(times))
    keep = Keep(last, daily, weekly, monthly)
    kept = to_keep(snaps, keep, utc_periods)
    assert kept <= {i for i, _ in snaps}
    if keep.unlimited:
        assert kept == {i for i, _ in snaps}
        return
    newest = sorted(snaps, key=lambda s: (s[1], s[0]), reverse=True)
    assert {i for i, _ in newest[:last]} <= kept
    assert len(kept) <= last + daily + weekly + monthly


def test_missed_run_within_grace_is_found_on_an_injected_clock():
    nightly = Schedule("nightly", "0 2 * * *", grace=6 * 3600)
    last = at("2026-11-20T02:00:05")
    assert missed_run(nightly, last, at("2026-11-21T01:59:00"), UTC) is None  # not due yet
    assert missed_run(nightly, last, at("2026-11-21T02:30:00"), UTC) == at("2026-11-21T02:00:00")
    assert missed_run(nightly, last, at("2026-11-21T09:00:00"), UTC) is None  # older than the grace window
    assert missed_run(nightly, last, at("2026-11-23T03:00:00"), UTC) == at("2026-11-23T02:00:00")  # once, the latest
    assert missed_run(nightly, None, at("2026-11-21T02:30:00"), UTC) is None  # no history: nothing to catch up


def test_cron_expressions_are_checked():
    assert valid_cron("0 2 * * *") is None
    assert valid_cron("*/15 * * * 1-5") is None
    assert valid_cron("0 25 * * *") is not None
    assert valid_cron("every night") is not None


def test_local_periods_are_used_by_default():
    now = time.time()
    assert to_keep([(1, now), (2, now - 1)], Keep(daily=1)) == {1}
