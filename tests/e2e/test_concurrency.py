"""Many initiators at once, each with many commands in flight."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import require_tool, run

pytestmark = pytest.mark.e2e
MiB = 1 << 20


def test_parallel_sessions_write_their_own_regions(run_server):
    server = run_server(scratch_config("128MiB"))
    url = server.url(SCRATCH_IQN)
    qemu_img = require_tool("qemu-img")
    writers = [subprocess.Popen([qemu_img, "bench", "-f", "raw", "-w", "-d", "32", "-c", "256", "-s", "64k",
                                 "-o", str(i * 16 * MiB), "--pattern", str(0x10 + i), url],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(6)]
    probes = [subprocess.Popen([require_tool("iscsi-readcapacity16"), url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True) for _ in range(16)]
    for proc in writers + probes:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, (out, err)
    with open(server.workdir / "disks" / "scratch.img", "rb") as disk:
        for i in range(6):
            disk.seek(i * 16 * MiB)
            assert disk.read(16 * MiB) == bytes([0x10 + i]) * (16 * MiB)
    assert server.log_text().count("logged in to iqn") >= 22
    run(["iscsi-inq", url])
