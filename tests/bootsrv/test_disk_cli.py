"""`bootsrv disk ...` as an admin types it; results checked with qemu-img."""

import json
import shutil
import subprocess
from pathlib import Path
from tests.clirun import run_cli

REPO = Path(__file__).resolve().parents[2]
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
