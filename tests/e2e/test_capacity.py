"""A disk grown while a client is connected: the client is told (2Ah/09h)."""

from __future__ import annotations

import os
import time

import pytest

from tests.support.cli import run_cli
from tests.support.faults_summary import record
from tests.support.qemu_io import qemu_io_session
from tests.support.scratch import SCRATCH_IQN, scratch_config, vhd_config
from tests.support.server import start_server
from tests.support.tools import require_tool, run

pytestmark = pytest.mark.e2e
MiB = 1 << 20


def test_extending_a_disk_in_use_raises_capacity_data_has_changed(run_server):
    server = run_server(scratch_config("64MiB"))
    with qemu_io_session(server.url(SCRATCH_IQN), lambda: "logged in to" in server.log_text()) as qemu_io:
        os.truncate(server.workdir / "disks" / "scratch.img", 96 * MiB)  # the admin grows the disk
        deadline = time.monotonic() + 30
        while "capacity changed" not in server.log_text():
            assert time.monotonic() < deadline, server.log_text()
            time.sleep(0.05)
        out = qemu_io.finish("read 0 512")  # the same session's next command
    assert "CAPACITY_DATA_HAS_CHANGED(0x2a09)" in out, out
    assert out.count("read 512/512 bytes at offset 0") == 2, out  # and the read then succeeded
    assert f"Total size:{96 * MiB}" in run(["iscsi-readcapacity16", server.url(SCRATCH_IQN)]).stdout


def test_a_served_vhd_is_extended_online_and_real_tools_read_the_new_size(run_server):
    server = run_server(vhd_config("disks/scratch.vhd", "64MiB"))
    url = server.url(SCRATCH_IQN)
    run(["qemu-io", "-f", "raw", "-c", f"write -P 0x5a {63 * MiB} {MiB}", url])  # the old last MiB
    with qemu_io_session(url, lambda: server.log_text().count("logged in to") == 2) as qemu_io:
        grown = run_cli("disk", "extend", "disks/scratch.vhd", "--size", "96MiB", "-c", server.config,
                        cwd=server.workdir, check=True)  # while that session is logged in
        assert "sessions told" in grown.stdout, grown.stdout
        out = qemu_io.finish("read 0 512")
    assert "CAPACITY_DATA_HAS_CHANGED(0x2a09)" in out, out  # told at once, not at the next periodic check
    assert f"Total size:{96 * MiB}" in run(["iscsi-readcapacity16", url]).stdout
    # The new space is usable and the old data is where it was.
    run(["qemu-io", "-f", "raw", "-c", f"write -P 0xa5 {95 * MiB} {MiB}", url])
    checked = run(["qemu-io", "-f", "raw", "-c", f"read -P 0x5a {63 * MiB} {MiB}", "-c",
                   f"read -P 0xa5 {95 * MiB} {MiB}", url]).stdout
    assert "Pattern verification failed" not in checked and checked.count("read 1048576/1048576") == 2, checked
    assert server.stop() == 0
    disk = server.workdir / "disks" / "scratch.vhd"
    assert f"virtual size: 96 MiB ({96 * MiB} bytes)" in run(["qemu-img", "info", "-f", "vpc", str(disk)]).stdout
    info = run([require_tool("vhdiinfo"), str(disk)]).stdout
    assert f"{96 * MiB} bytes" in info, info
    assert run_cli("disk", "check", disk, check=True).stdout.strip().endswith("ok")


@pytest.mark.parametrize("point", ["disk.extend.header", "disk.extend.footer"])
def test_a_server_killed_while_extending_online_restarts_on_the_old_or_the_new_size(tmp_path, point):
    config = vhd_config("disks/scratch.vhd", "64MiB")
    server = start_server(tmp_path, config, env={"BOOTSRV_CRASH_AT": point})
    try:
        run(["qemu-io", "-f", "raw", "-c", f"write -P 0x5a {63 * MiB} {MiB}", server.url(SCRATCH_IQN)])
        killed = run_cli("disk", "extend", "disks/scratch.vhd", "--size", "96MiB", "-c", server.config,
                         cwd=server.workdir)
        assert killed.returncode == 1 and "without answering disk.extend" in killed.stderr, killed.stderr
        assert server.proc.wait(timeout=60) == -9
    finally:
        server.stop()
    record("kill -9", trials=1)
    again = start_server(tmp_path, config)
    try:
        url = again.url(SCRATCH_IQN)
        size = int(run(["iscsi-readcapacity16", url]).stdout.split("Total size:")[1].split()[0])
        assert size in (64 * MiB, 96 * MiB)
        kept = run(["qemu-io", "-f", "raw", "-c", f"read -P 0x5a {63 * MiB} {MiB}", url]).stdout
        assert "Pattern verification failed" not in kept and "read 1048576/1048576" in kept, kept
    finally:
        assert again.stop() == 0
    disk = tmp_path / "disks" / "scratch.vhd"
    assert run_cli("disk", "check", disk, check=True).stdout.strip().endswith("ok")
    assert f"({size} bytes)" in run(["qemu-img", "info", "-f", "vpc", str(disk)]).stdout
