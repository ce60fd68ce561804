"""A disk grown while a client is connected: the client is told (2Ah/09h)."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import require_tool, run

pytestmark = pytest.mark.e2e
MiB = 1 << 20


def test_extending_a_disk_in_use_raises_capacity_data_has_changed(run_server):
    server = run_server(scratch_config("64MiB"))
    qemu_io = subprocess.Popen([require_tool("qemu-io"), "-f", "raw", server.url(SCRATCH_IQN)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert qemu_io.stdin is not None
    try:
        qemu_io.stdin.write("read 0 512\n")
        qemu_io.stdin.flush()
        deadline = time.monotonic() + 30
        while "logged in to" not in server.log_text():
            assert time.monotonic() < deadline and qemu_io.poll() is None
            time.sleep(0.05)
        os.truncate(server.workdir / "disks" / "scratch.img", 96 * MiB)  # the admin grows the disk
        while "capacity changed" not in server.log_text():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        qemu_io.stdin.write("read 0 512\nquit\n")  # the same session's next command
        qemu_io.stdin.flush()
        out, _ = qemu_io.communicate(timeout=60)
    finally:
        if qemu_io.poll() is None:
            qemu_io.kill()
            qemu_io.wait()
    assert "CAPACITY_DATA_HAS_CHANGED(0x2a09)" in out, out
    assert out.count("read 512/512 bytes at offset 0") == 2, out  # and the read then succeeded
    assert f"Total size:{96 * MiB}" in run(["iscsi-readcapacity16", server.url(SCRATCH_IQN)]).stdout
