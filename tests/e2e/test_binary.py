"""The one-file binary, built from packaging/bootsrv.spec, run the way an admin
runs it: no venv, no PYTHONPATH, from another folder. It serves a disk that
iscsi-ls sees, takes a snapshot through its admin socket, stops on SIGTERM with
exit 0, and leaves no unpacked directory behind; an rbd: disk goes through the host's librbd."""

from __future__ import annotations

import random
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from bootsrv.web.page import ROUTES, STATIC
from tests.support.binary import CLEAN_ENV, serve_binary
from tests.support.ceph import run_client
from tests.support.ports import free_port
from tests.support.progress import in_terminal, progress_lines, spread_disk
from tests.support.rbd_lu import RBD_IQN, rbd_config
from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def binary(one_file_binary) -> Path:
    return one_file_binary  # built once per session (tests/support/binary.py), shared with the .deb test


def test_binary_version_needs_no_python(binary, tmp_path):
    started = time.monotonic()
    result = subprocess.run([str(binary), "--version"], env=CLEAN_ENV, cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    print(f"--version took {time.monotonic() - started:.2f} s")
    assert result.returncode == 0 and result.stdout.startswith("bootsrv "), result
    bad = subprocess.run([str(binary), "serve", "--config", str(tmp_path / "missing.toml")], env=CLEAN_ENV,
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "missing.toml" in bad.stderr, bad


def test_binary_draws_progress_on_a_terminal(binary, tmp_path):
    """tqdm is frozen into the binary: a convert under a pseudo-terminal draws its line."""
    source = spread_disk(tmp_path / "small.raw", size=64 << 20, every=8 << 20)
    output = in_terminal([str(binary), "disk", "convert", str(source), str(tmp_path / "small.vhd"), "-c",
                          str(tmp_path / "none.toml")], tmp_path, CLEAN_ENV, timeout=120)
    drawn = progress_lines(output)
    assert drawn and drawn[-1].percent == 100 and drawn[-1].total == "64.0M", output


def test_binary_serves_snapshots_and_stops_cleanly(binary, tmp_path):
    unpack = tmp_path / "tmp"
    unpack.mkdir()
    env = dict(CLEAN_ENV, TMPDIR=str(unpack))  # where the one-file launcher unpacks itself
    port = free_port()
    config = tmp_path / "bootsrv.toml"
    web_port = free_port()
    config.write_text(scratch_config("64MiB").replace("@PORT@", str(port)).replace("scratch.img", "scratch.vhd")
                      + f'[web]\nlisten = "127.0.0.1:{web_port}"\ntoken = "binary-test-token-0123"\n')
    started = time.monotonic()
    proc, log = serve_binary(binary, config, tmp_path, env)
    try:
        print(f"serve ready after {time.monotonic() - started:.2f} s")
        listing = run(["iscsi-ls", "-s", f"iscsi://127.0.0.1:{port}"]).stdout
        assert SCRATCH_IQN in listing and "Lun:0" in listing, listing
        made = subprocess.run([str(binary), "snapshot", "create", "scratch", "-c", str(config)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert made.returncode == 0 and "snapshot 1 of scratch" in made.stdout, made
        # The dashboard's files (uPlot among them) are frozen in and served as they are in the tree.
        for url_path, name in ROUTES.items():
            with urllib.request.urlopen(f"http://127.0.0.1:{web_port}{url_path}", timeout=30) as reply:
                assert reply.read() == (STATIC / name).read_bytes(), url_path
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
    assert list(unpack.iterdir()) == [], "the launcher left its unpacked files behind"


def test_binary_serves_an_rbd_disk_through_the_hosts_librbd(binary, ceph_cluster, tmp_path):
    """The binary carries no librbd: it loads the host's python3-rbd (Debian's, the same CPython
    ABI) and serves an rbd: disk byte for byte."""
    port = free_port()
    config = tmp_path / "bootsrv.toml"
    config.write_text(rbd_config(ceph_cluster, "binary-lu", "16MiB").replace("@PORT@", str(port)))
    proc, log = serve_binary(binary, config, tmp_path)
    try:
        data = random.Random(19).randbytes(4 << 20)
        (tmp_path / "in.raw").write_bytes(data)
        url = f"iscsi://127.0.0.1:{port}/{RBD_IQN}/0"
        run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(tmp_path / "in.raw"), url])
        run_client(["qemu-img", "convert", "-f", "raw", "-O", "raw", ceph_cluster.qemu_url("binary-lu"),
                    str(tmp_path / "out.raw")])
        assert (tmp_path / "out.raw").read_bytes()[:len(data)] == data
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()
    assert "Traceback" not in log.read_text()
