"""Start, stop and restart as an admin would: SIGTERM with live sessions, port clashes."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.support.paths import REPO
from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import require_tool

pytestmark = pytest.mark.e2e


def test_sigterm_with_a_live_session_exits_cleanly(run_server):
    server = run_server(scratch_config("64MiB"))
    bench = subprocess.Popen([require_tool("qemu-img"), "bench", "-f", "raw", "-w", "-d", "8", "-c", "10000000",
                              "-s", "64k", server.url(SCRATCH_IQN)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while "logged in to" not in server.log_text():
            assert time.monotonic() < deadline and bench.poll() is None, server.log_text()
            time.sleep(0.05)
        assert server.stop() == 0
        assert "stopping" in server.log_text()
    finally:
        bench.kill()
        bench.wait()


def test_port_in_use_is_one_clear_line(run_server, tmp_path):
    first = run_server(scratch_config("16MiB"))
    clash = tmp_path / "clash"
    clash.mkdir()
    config = clash / "c.toml"
    config.write_text(scratch_config("16MiB").replace("@PORT@", str(first.port)))
    result = subprocess.run([sys.executable, "-m", "bootsrv", "serve", "--config", str(config)],
                            capture_output=True, text=True, timeout=60, cwd=REPO)
    assert result.returncode == 1
    assert "iscsi.portals: cannot listen" in result.stderr and "Traceback" not in result.stderr
