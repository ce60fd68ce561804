"""Load: 256 sessions doing mixed I/O at once for a minute. Every read returns
what that session last wrote there, no session is dropped, and the server's
memory and descriptors stay flat (a leak per command or per session would show)."""

from __future__ import annotations

import pytest

from tests.support.faults_summary import record
from tests.support.load import SESSIONS, SLOTS, mixed_load
from tests.support.scratch import scratch_config

pytestmark = pytest.mark.e2e
SECONDS = 60


def test_256_sessions_of_mixed_io_for_a_minute(run_server):
    server = run_server(scratch_config(f"{SESSIONS * SLOTS * 4}KiB"))
    result = mixed_load(server.port, SESSIONS, SECONDS)
    record("load", trials=1, inputs=result.commands)
    assert not result.failures, result.failures[:5]
    assert result.slowest_session > 0, "a session made no progress"
    assert result.descriptors[1] == result.descriptors[0], result.descriptors
    assert result.rss_mib[1] - result.rss_mib[0] < 16, result.rss_mib
    print(f"\n{SESSIONS} sessions, {result.commands} commands in {SECONDS} s; server RSS "
          f"{result.rss_mib[0]:.0f} -> {result.rss_mib[1]:.0f} MiB, descriptors {result.descriptors[0]} -> "
          f"{result.descriptors[1]}")
