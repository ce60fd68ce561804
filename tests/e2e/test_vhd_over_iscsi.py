"""VHD disks served over iSCSI, checked with qemu-img and libvhdi, and the
conformance suite on a dynamic VHD LUN."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess

import pytest

from tests.support.cli import run_cli
from tests.support.scratch import SCRATCH_IQN, vhd_config
from tests.support.tools import accepted_failures, run

pytestmark = pytest.mark.e2e
MiB = 1 << 20


def bootsrv(*args: str, cwd) -> str:
    return run_cli(*args, cwd=cwd, check=True).stdout


def sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_dynamic_and_differencing_roundtrip_through_iscsi(run_server, tmp_path):
    data = tmp_path / "random.bin"
    data.write_bytes(os.urandom(256 * MiB))
    golden, child = tmp_path / "golden.vhd", tmp_path / "ws01.vhd"
    bootsrv("disk", "create", str(golden), "--size", "300MiB", cwd=tmp_path)
    # A golden image with content, written through the target like an admin's install would be.
    server = run_server(vhd_config(str(golden)))
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(data), server.url(SCRATCH_IQN)], timeout=600)
    back = tmp_path / "back.raw"
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url(SCRATCH_IQN), str(back)], timeout=600)
    assert server.stop() == 0
    with open(back, "rb") as a, open(data, "rb") as b:
        assert a.read(256 * MiB) == b.read()
    # qemu reads our dynamic VHD as the same bytes (its longer tail is zeros).
    run(["qemu-img", "compare", "-f", "vpc", "-F", "raw", str(golden), str(data)], timeout=600)
    assert "ok" in bootsrv("disk", "check", str(golden), cwd=tmp_path)
    golden_sum = sha256(golden)

    bootsrv("disk", "create", str(child), "--parent", str(golden), cwd=tmp_path)
    server = run_server(vhd_config(str(child)))
    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(256 * MiB))
    run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(other), server.url(SCRATCH_IQN)], timeout=600)
    via_iscsi = tmp_path / "child.raw"
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url(SCRATCH_IQN), str(via_iscsi)], timeout=600)
    with open(via_iscsi, "rb") as a, open(other, "rb") as b:
        assert a.read(256 * MiB) == b.read()
        assert a.read() == bytes(44 * MiB)  # beyond: the golden's untouched zeros
    assert server.stop() == 0
    assert sha256(golden) == golden_sum, "the golden parent was modified"
    assert "ok" in bootsrv("disk", "check", str(child), cwd=tmp_path)
    # libvhdi follows the chain and reads what our target served.
    script = ("import pyvhdi, sys\np = pyvhdi.file(); p.open(sys.argv[1])\n"
              "c = pyvhdi.file(); c.open(sys.argv[2]); c.set_parent(p)\n"
              "out = open(sys.argv[3], 'wb')\nsize = c.get_media_size(); pos = 0\n"
              "while pos < size:\n    n = min(1 << 22, size - pos)\n"
              "    out.write(c.read_buffer_at_offset(n, pos)); pos += n\n")
    theirs = tmp_path / "libvhdi.raw"
    result = subprocess.run(["/usr/bin/python3", "-c", script, str(golden), str(child), str(theirs)],
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert sha256(theirs) == sha256(via_iscsi)


@pytest.mark.parametrize("layout", ["dynamic", "after a snapshot"])
def test_conformance_suite_on_a_dynamic_vhd(run_server, tmp_path, layout):
    server = run_server(vhd_config(str(tmp_path / "scratch.vhd"), size="1GiB"))
    if layout == "after a snapshot":  # the LUN is then a differencing layer over the frozen one
        bootsrv("snapshot", "create", "scratch", "-c", str(server.config), cwd=tmp_path)
    out = run(["iscsi-test-cu", "--dataloss", "-n", "-t", "ALL", "--initiator-name=iqn.2026-11.test:init1",
               "--initiator-name-2=iqn.2026-11.test:init2", server.url(SCRATCH_IQN)], timeout=900,
              check=False).stdout
    summary = re.search(r"^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.MULTILINE)
    assert summary, out[-3000:]
    failures = {f"{s}.{t}" for s, t in re.findall(r"Suite (\S+), Test (\S+) had failures", out)}
    assert not failures - accepted_failures(), out[-5000:]
    assert server.stop() == 0
    assert "ok" in bootsrv("disk", "check", str(tmp_path / "scratch.vhd"), cwd=tmp_path)
    print(f"iscsi-test-cu on a VHD ({layout}): {summary.group(3)} of {summary.group(1)} passed")


def test_readonly_family_on_a_readonly_vhd(run_server, tmp_path):
    bootsrv("disk", "create", str(tmp_path / "ro.vhd"), "--size", "64MiB", cwd=tmp_path)
    server = run_server(vhd_config(str(tmp_path / "ro.vhd"), readonly=True))
    out = run(["iscsi-test-cu", "--dataloss", "-n", "-t", "SCSI.ReadOnly", server.url(SCRATCH_IQN)],
              timeout=300).stdout
    match = re.search(r"^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.MULTILINE)
    assert match and match.group(4) == "0", out


@pytest.mark.parametrize("options", ["subformat=fixed", "subformat=fixed,force_size=on", "subformat=dynamic"])
def test_qemu_made_vhds_are_served_byte_identically(run_server, tmp_path, options):
    image, expected, served = tmp_path / "q.vhd", tmp_path / "expected.raw", tmp_path / "served.raw"
    run(["qemu-img", "create", "-f", "vpc", "-o", options, str(image), "100M"])
    run(["qemu-io", "-f", "vpc", "-c", "write -P 0xa7 3M 5M", "-c", "write -P 0x3c 70M 4k", str(image)])
    run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(image), str(expected)])
    server = run_server(vhd_config(str(image)))
    run(["qemu-img", "convert", "-f", "raw", "-O", "raw", server.url(SCRATCH_IQN), str(served)],
        timeout=300)
    assert sha256(served) == sha256(expected)
