"""`bootsrv disk ...` as an admin types it; results checked with qemu-img."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from target.stores.vhd import open_vhd
from tests.support.cli import run_cli
from tests.support.faults_summary import record
from tests.support.paths import REPO

MiB = 1 << 20


def bootsrv(*args, check=True):
    return run_cli("disk", *args, check=check, timeout=120)


def qemu_size(path):
    out = subprocess.run([shutil.which("qemu-img"), "info", "-f", "vpc", "--output=json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["virtual-size"]


def test_create_info_extend_convert_check(tmp_path):
    dyn, fixed, child = tmp_path / "d.vhd", tmp_path / "f.vhd", tmp_path / "c.vhd"
    bootsrv("create", dyn, "--size", "20MiB")
    bootsrv("create", fixed, "--size", "10MiB", "--type", "fixed")
    bootsrv("create", child, "--parent", dyn)
    assert qemu_size(dyn) == 20 * MiB and qemu_size(fixed) == 10 * MiB
    info = json.loads(bootsrv("info", child, "--json").stdout)
    assert info["type"] == "differencing" and info["parents"] == [str(dyn)] and info["virtual_size"] == 20 * MiB
    assert info["block_size"] == 2 * MiB and len(info["uuid"]) == 32 and len(info["geometry"]) == 3
    bootsrv("extend", fixed, "--size", "30MiB")
    assert qemu_size(fixed) == 30 * MiB
    raw = tmp_path / "flat.raw"
    bootsrv("convert", child, raw)
    assert raw.stat().st_size == 20 * MiB
    back = tmp_path / "back.vhd"
    bootsrv("convert", raw, back, "--type", "dynamic")
    assert qemu_size(back) == 20 * MiB
    assert bootsrv("check", back).stdout.strip().endswith("ok")


def test_mistakes_are_one_line_and_exit_1(tmp_path):
    existing = tmp_path / "d.vhd"
    bootsrv("create", existing, "--size", "1MiB")
    for args in (("create", existing, "--size", "1MiB"), ("create", tmp_path / "x.vhd", "--size", "1000"),
                 ("info", tmp_path / "missing.vhd"), ("extend", existing, "--size", "512KiB")):
        result = bootsrv(*args, check=False)
        assert result.returncode == 1, args
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    broken = tmp_path / "broken.vhd"
    broken.write_bytes(existing.read_bytes()[:-512] + b"\0" * 512)
    with open(broken, "r+b") as handle:
        handle.write(b"garbage!")  # both footers gone
    result = bootsrv("check", broken, check=False)
    assert result.returncode == 1 and "problem:" in result.stdout


def bootsrv_killed_at(point: str, *args: object) -> None:
    result = subprocess.run([sys.executable, "-m", "bootsrv", "disk", *map(str, args)], capture_output=True,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO), BOOTSRV_CRASH_AT=point), timeout=120)
    assert result.returncode == -9, (point, result.stdout, result.stderr)


@pytest.mark.parametrize("point", ["disk.convert.copying", "disk.convert.flushed"])
def test_convert_killed_leaves_no_half_disk_and_the_next_run_starts_over(tmp_path, point):
    source, dst = tmp_path / "src.raw", tmp_path / "dst.vhd"
    data = os.urandom(6 * MiB)
    source.write_bytes(data)
    bootsrv_killed_at(point, "convert", source, dst)
    record("kill -9", trials=1)
    assert not dst.exists(), "a stopped convert left something that looks like the disk"
    assert bootsrv("convert", source, dst).returncode == 0
    assert not (tmp_path / "dst.vhd.partial").exists()
    assert bootsrv("check", dst).stdout.strip().endswith("ok")
    out = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "vpc", str(source), str(dst)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("kind, point", [("dynamic", "disk.extend.header"), ("dynamic", "disk.extend.footer"),
                                         ("fixed", "disk.extend.footer")])
def test_extend_killed_is_finished_or_undone(tmp_path, kind, point):
    disk = tmp_path / "d.vhd"
    bootsrv("create", disk, "--size", "8MiB", "--type", kind)
    store = open_vhd(disk)
    data = os.urandom(8 * MiB)
    store.write(0, data)
    store.flush()
    store.close()
    bootsrv_killed_at(point, "extend", disk, "--size", "16MiB")
    record("kill -9", trials=1)
    store = open_vhd(disk)  # what the server does when it starts: reads it, and finishes the footers
    assert store.size in (8 * MiB, 16 * MiB)
    assert store.read(0, 8 * MiB) == data
    assert store.read(8 * MiB, store.size - 8 * MiB) == bytes(store.size - 8 * MiB)  # no old footer in it
    store.close()
    assert not (tmp_path / "d.vhd.extending").exists()
    assert bootsrv("check", disk).stdout.strip().endswith("ok")
    assert qemu_size(disk) in (8 * MiB, 16 * MiB)
    assert bootsrv("extend", disk, "--size", "16MiB").returncode == 0  # and the admin can run it again
    assert qemu_size(disk) == 16 * MiB
    assert bootsrv("check", disk).stdout.strip().endswith("ok")
    store = open_vhd(disk, readonly=True)
    assert store.read(0, 16 * MiB) == data + bytes(8 * MiB)
    store.close()


def test_extend_killed_halfway_on_a_fixed_disk_is_finished_by_the_next_run(tmp_path):
    disk = tmp_path / "d.vhd"
    bootsrv("create", disk, "--size", "8MiB", "--type", "fixed")
    bootsrv_killed_at("disk.extend.footer", "extend", disk, "--size", "16MiB")
    record("kill -9", trials=1)
    assert (tmp_path / "d.vhd.extending").exists()
    checked = bootsrv("check", disk)
    assert checked.returncode == 0 and "interrupted `bootsrv disk extend`" in checked.stdout
    assert bootsrv("extend", disk, "--size", "16MiB").returncode == 0  # the admin runs it again, not the server
    assert not (tmp_path / "d.vhd.extending").exists()
    store = open_vhd(disk, readonly=True)
    assert store.size == 16 * MiB and store.read(0, 16 * MiB) == bytes(16 * MiB)
    store.close()
