"""qemu-img (QEMU's libiscsi block driver) writes, reads back and benchmarks a LUN."""

from __future__ import annotations

import os
import re

import pytest

from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import run

pytestmark = pytest.mark.e2e
MiB = 1 << 20


def _digest_opts(server, digest: str = "none") -> str:
    return (f"driver=iscsi,transport=tcp,portal=127.0.0.1:{server.port},target={SCRATCH_IQN},"
            f"lun=0,header-digest={digest}")


def test_convert_256MiB_roundtrip_is_byte_identical(run_server, tmp_path):
    server = run_server(scratch_config("300MiB"))
    source = tmp_path / "random.bin"
    source.write_bytes(os.urandom(256 * MiB))
    url = server.url(SCRATCH_IQN)
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(source), url], timeout=300)
    back = tmp_path / "back.bin"
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", url, str(back)], timeout=300)
    assert back.stat().st_size == 300 * MiB
    with open(source, "rb") as a, open(back, "rb") as b:
        while chunk := a.read(8 * MiB):
            assert b.read(len(chunk)) == chunk
        assert b.read() == bytes(44 * MiB)  # the rest of the disk was never written
    # qemu-img compare agrees (the longer side must be zeros past the shorter one).
    run(["qemu-img", "compare", "-f", "raw", "-F", "raw", str(source), url], timeout=300)
    # And the bytes are on the server's disk file itself.
    with open(source, "rb") as a, open(server.workdir / "disks" / "scratch.img", "rb") as disk:
        assert disk.read(MiB) == a.read(MiB)


def test_header_digest_roundtrip_through_qemu(run_server, tmp_path):
    server = run_server(scratch_config("64MiB"))
    source = tmp_path / "random.bin"
    source.write_bytes(os.urandom(16 * MiB))
    run(["qemu-img", "convert", "-n", "-f", "raw", "--target-image-opts", str(source),
         _digest_opts(server, "crc32c")], timeout=300)
    back = tmp_path / "back.bin"
    run(["qemu-img", "convert", "--image-opts", _digest_opts(server, "crc32c"), "-O", "raw", str(back)],
        timeout=300)
    assert back.read_bytes()[: 16 * MiB] == source.read_bytes()
    assert "digests CRC32C/" in server.log_text()


@pytest.mark.parametrize("size,count", [("4k", 4000), ("1M", 200)])
@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
def test_qemu_img_bench_depth_32(run_server, size, count, write):
    server = run_server(scratch_config("300MiB"))
    cmd = ["qemu-img", "bench", "-f", "raw", "-d", "32", "-c", str(count), "-s", size, "-S", size]
    if write:
        cmd += ["-w", "--pattern", "0xa5"]
    out = run(cmd + [server.url(SCRATCH_IQN)], timeout=300).stdout
    assert re.search(rf"Run completed in [\d.]+ seconds", out), out
    if write:  # the pattern landed on the disk
        step = 4096 if size == "4k" else MiB
        with open(server.workdir / "disks" / "scratch.img", "rb") as disk:
            disk.seek((count - 1) * step)
            assert disk.read(step) == b"\xa5" * step
