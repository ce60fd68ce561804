"""Abuse over the wire while a client of another disk keeps working: mutated
logins and PDUs by the thousand, and slow (slowloris) logins from several
addresses. The bystander sees no error and no foreign byte, the server's
memory stays bounded, and it serves normally afterwards. (bench/soak.py runs
the same for longer.)"""

from __future__ import annotations

import pytest

from tests.support.abuse import Bystander, abuse_config, live_fuzz, slow_logins
from tests.support.faults_summary import record
from tests.support.load import server_pid
from tests.support.tools import run

pytestmark = pytest.mark.e2e
FUZZ_INPUTS = 3000


def test_mutated_logins_and_pdus_over_tcp_never_disturb_another_client(run_server):
    server = run_server(abuse_config())
    bystander = Bystander(server.port)
    bystander.start()
    sent = live_fuzz(server.port, FUZZ_INPUTS, seed=1)
    bystander.finish()
    record("protocol fuzzing", inputs=sent)
    assert sent == FUZZ_INPUTS
    assert not bystander.errors, bystander.errors[:3]
    assert bystander.commands > 0
    assert server.proc.poll() is None, "the server died"
    assert "Vendor:BOOTSRV" in run(["iscsi-inq", server.url("iqn.2026-11.lan.bootsrv:fuzzed")]).stdout
    assert "Traceback" not in server.log_text()
    print(f"\n{sent} mutated connections; the bystander ran {bystander.commands} commands")


def test_slow_logins_are_timed_out_with_memory_bounded(run_server):
    server = run_server(abuse_config(login_timeout="3s"))
    bystander = Bystander(server.port)
    bystander.start()
    # four addresses x 64 = the 256 half-open logins the server holds at most; 16 more are refused
    result = slow_logins(server.port, server_pid(server.port), [f"127.0.0.{n}" for n in range(3, 7)],
                         per_address=68, seconds=60)
    bystander.finish()
    record("floods, slow logins", trials=1, inputs=result.opened)
    assert result.closed_by_server == result.opened, result  # none outlives login_timeout
    assert result.rss_mib[1] - result.rss_mib[0] < 32, result.rss_mib
    assert not bystander.errors, bystander.errors[:3]
    assert "login did not finish in time" in server.log_text()
    print(f"\n{result.opened} slow logins; server RSS {result.rss_mib[0]:.0f} -> {result.rss_mib[1]:.0f} MiB at the peak")
    assert "Vendor:BOOTSRV" in run(["iscsi-inq", server.url("iqn.2026-11.lan.bootsrv:fuzzed")]).stdout
