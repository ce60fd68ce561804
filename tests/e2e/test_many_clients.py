"""Thousands of clients (issue 16): 2000 [[client]] entries under a 1024-descriptor limit.
Disks of clients that are not logged in stay closed, TFTP has no select() to outgrow,
and a real firmware client still gets iPXE and boots its own disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from demo.labnet import LAB_CONFIG
from tests.support.cli import run_cli
from tests.support.netboot import MAC, boot, golden_with_marker, power_off, wait_for
from tests.support.paths import REPO
from tests.support.server import READY_LINE

pytestmark = pytest.mark.e2e
CLIENTS = 2000


def many_clients(count: int) -> str:
    """LAB_CONFIG's ws01 plus count-1 more, each with its own MAC and no fixed address."""
    lines = [LAB_CONFIG.replace('pool = "10.77.0.100-10.77.0.199"', 'pool = "10.77.0.100-10.77.0.250"')]
    for n in range(1, count):
        lines.append(f'[[client]]\nname = "seat{n:04d}"\nmac = "02:10:00:00:{n >> 8:02x}:{n & 255:02x}"\n'
                     'image = "golden"\n')
    return "\n".join(lines)


def test_2000_clients_boot_with_1024_descriptors(lab_netns, tmp_path):
    golden = golden_with_marker(tmp_path)
    golden_bytes = golden.read_bytes()
    (tmp_path / "tftp").mkdir()
    (tmp_path / "lab.toml").write_text(many_clients(CLIENTS))
    log = open(tmp_path / "server.log", "wb")
    # `ulimit -n` sets the hard limit too: the server cannot raise it past 1024.
    server = lab_netns.popen(["sh", "-c", f'ulimit -n 1024 && exec "{sys.executable}" -m bootsrv serve '
                                          f'--config "{tmp_path / "lab.toml"}"'],
                             stdout=log, stderr=log, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)))
    server_log = lambda: (tmp_path / "server.log").read_text(errors="replace")  # noqa: E731
    wait_for(lambda: READY_LINE in server_log(), "the server with 2000 clients", 600, server)
    descriptors = len(os.listdir(f"/proc/{server.pid}/fd")) if os.path.exists(f"/proc/{server.pid}/fd") else 0
    limits = open(f"/proc/{server.pid}/limits").read()
    assert "Max open files            1024                 1024" in limits, limits
    # sh exec'd bootsrv, so the PID is the server's own.
    assert 0 < descriptors < 200, descriptors

    got = tmp_path / "undionly.kpxe"
    fetched = subprocess.run(lab_netns.cmd("curl", "-sS", "--max-time", "60", "tftp://10.77.0.1/undionly.kpxe",
                                           "-o", str(got)), capture_output=True, timeout=120)
    assert fetched.returncode == 0, fetched.stderr
    assert got.read_bytes() == open("/usr/lib/ipxe/undionly.kpxe", "rb").read()

    power_off(boot(lab_netns, tmp_path, MAC, "ws01"))
    status = json.loads(run_cli("status", "--json", "-c", tmp_path / "lab.toml", check=True).stdout)
    assert status["services"]["tftp"] == "running" and status["clients"]["total"] == CLIENTS
    assert status["clients"]["disks_open"] <= 2  # ws01's, after its boot; the rest stay closed
    text = server_log()
    assert "initiator.ws01 logged in to iqn.2026-11.lan.bootsrv:ws01" in text
    assert "Traceback" not in text and "out of range" not in text
    assert server.poll() is None, "the server died"
    assert golden.read_bytes() == golden_bytes
