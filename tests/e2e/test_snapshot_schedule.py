"""Issue 6 acceptance 5: a schedule fires (a real cron minute), takes, exports
incrementally and prunes to its counts; a run missed while the server was down
is made at the next start, within the grace window."""

from __future__ import annotations

import json
import time

import pytest

from tests.support.scratch import SCRATCH_IQN
from tests.support.server import start_server
from tests.support.snapshots import bootsrv_cli, standalone_config, write_image

pytestmark = pytest.mark.e2e

SCHEDULE = """
[[snapshots.schedule]]
name = "minutely"
disks = ["*"]
cron = "* * * * *"
export = "incremental"
keep = { last = 2 }
grace = "10m"
"""


def status(server) -> dict:
    return json.loads(bootsrv_cli(server.workdir, "status", "--json", "-c", str(server.config)).stdout)


def finished_runs(server) -> int:
    return server.log_text().count("schedule minutely finished: ok")


def wait_for_runs(server, count: int, limit: float) -> None:
    deadline = time.monotonic() + limit  # waiting for the clock to reach a cron minute, not timing us
    while finished_runs(server) < count:
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.5)


def start_early_in_a_minute() -> None:
    """The checks before the first cron run need the minute not to turn while the server starts and takes
    its first writes (a slow CI machine once saw the run fire before the first status); the two manual runs
    then finish long before the next cron minute, so the run counts stay exact."""
    into_minute = time.time() % 60
    if into_minute > 20:
        time.sleep(61 - into_minute)


def test_schedule_takes_exports_prunes_and_catches_up(tmp_path):
    start_early_in_a_minute()
    server = start_server(tmp_path, standalone_config(extra=SCHEDULE))
    try:
        write_image(server, server.url(SCRATCH_IQN), b"\x5a" * (1 << 20), tmp_path / "a.bin")
        (row,) = status(server)["schedules"]
        assert row["cron"] == "* * * * *" and row["next_run"] is not None and row["last_run"] is None
        wait_for_runs(server, 1, 75)  # the cron fires at the next minute
        fired = status(server)["schedules"][0]
        assert fired["last_result"] == "ok" and fired["last_run"] and fired["next_run"] > fired["last_run"]
        for _ in range(2):
            out = bootsrv_cli(tmp_path, "schedule", "run", "minutely", "-c", str(server.config)).stdout
            assert "ok" in out or "already running" in out, out
        wait_for_runs(server, 3, 60)
    finally:
        assert server.stop() == 0
    stopped = time.time()
    # Down across the next cron minute: the start catches up on it.
    time.sleep(max(0.0, 62 - stopped % 60))
    server = start_server(tmp_path, standalone_config(extra=SCHEDULE))
    try:
        wait_for_runs(server, 4, 60)
        assert "was missed while bootsrv was down; running it now" in server.log_text()
        snaps = json.loads(bootsrv_cli(tmp_path, "snapshot", "list", "--json", "-c", str(server.config)).stdout)
        scheduled = [s for s in snaps if s["origin"] == "schedule:minutely"]
        assert len(scheduled) == 2, snaps  # keep = { last = 2 }
        exports = sorted((tmp_path / "exports" / "scratch").glob("*.vhd"))
        assert len(exports) == 4, exports
        assert sum("-full." in e.name for e in exports) == 1, exports
        newest = max(exports, key=lambda e: int(e.name.split("-")[1]))
        assert "-incr." in newest.name
        assert "ok" in bootsrv_cli(tmp_path, "snapshot", "verify", str(newest)).stdout
    finally:
        assert server.stop() == 0
    assert "Traceback" not in server.log_text(), server.log_text()
