"""A new image installed from an ISO by bootsrv itself (issue 18, acceptance 2): `image
create` makes an empty image, `image install --iso --client ws01` makes ws01's next boot
start the installer (iPXE sanhooks ws01's target, which serves the image's edit layer, and
sanboots the ISO from bootsrv's boot HTTP), the installer finds the disk in the iBFT and
writes a bootable system onto it, `image commit` makes that a version, and a new client of
the image then boots it diskless. ws01's own disk is never touched."""

from __future__ import annotations

import json
import shutil

import pytest

from target.stores.vhd import open_vhd
from tests.support.cli import run_cli
from tests.support.installer_iso import golden_raw, installer_iso
from tests.support.linux_boot import FIRMWARES, assert_clean_boot, power_on, sha256
from tests.support.linux_image import DISK_SIZE
from tests.support.netboot import LAB, start_bootsrv

pytestmark = pytest.mark.e2e
WS01, WS02 = ("52:54:00:12:34:56", "tap0"), ("52:54:00:12:34:57", "tap1")
CONFIG = LAB.replace('interface = "tap0"', 'interface = "br0"')


def admin(tmp_path, *args: str) -> str:
    return run_cli(*args, "-c", tmp_path / "lab.toml", cwd=tmp_path, check=True).stdout


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("firmware", FIRMWARES)
def test_an_image_installed_from_an_iso_boots_diskless(classroom, linux_golden, tmp_path, firmware):
    lab, _site = classroom
    shutil.copyfile(linux_golden, tmp_path / "golden.vhd")
    iso = installer_iso()
    server_log = start_bootsrv(lab, tmp_path, CONFIG)
    ws01_disk = tmp_path / "state" / "clients" / "ws01.vhd"
    ws01_own = sha256(ws01_disk)

    admin(tmp_path, "image", "create", "lab", "--size", str(DISK_SIZE))
    assert "starts the installer" in admin(tmp_path, "image", "install", "lab", "--iso", str(iso), "--client", "ws01")
    install = power_on(lab, tmp_path, firmware, {"ws01": WS01}, "install")["ws01"]
    report = f"the installer's console:\n{install.text[-6000:]}"
    assert install.failures() == [] and install.boot_errors() == [] and install.kernel_errors() == [], report
    assert install.said()[-2:] == ["installed onto /dev/sda", "installer done"], report
    assert sha256(ws01_disk) == ws01_own, "the installer wrote to ws01's own disk"
    status = json.loads(admin(tmp_path, "status", "--json"))
    assert status["images"][1]["edit"]["client"] == "ws01" and status["images"][1]["edit"]["booted"]
    assert "0 request(s)" not in status["services"]["http"], status["services"]  # the ISO came from bootsrv

    assert "current version 2 (installed)" in admin(tmp_path, "image", "commit", "lab", "--label", "installed",
                                                      "--force")
    version = tmp_path / "state" / "images" / "lab" / "v2.vhd"
    assert golden_raw(version) == golden_raw(linux_golden), "the installed system is not what the installer wrote"

    admin(tmp_path, "client", "add", "ws02", "--mac", WS02[0], "--image", "lab", "--reset-on-boot")
    booted = power_on(lab, tmp_path, firmware, {"ws02": WS02, "ws01": WS01}, "boot")
    assert_clean_boot("ws02", booted["ws02"])
    assert booted["ws02"].files == ["sums"], booted["ws02"].text[-3000:]
    assert f"image golden {linux_golden.parent.name}" in booted["ws02"].said()  # the system the ISO carries
    assert_clean_boot("ws01", booted["ws01"])  # back on its own disk, over the golden image
    log = server_log()
    assert "ws01 installs installer.iso onto a layer over version 1" in log
    assert "ws02 booted: its disk starts again from version 2 of image lab" in log
    assert "Traceback" not in log
    store = open_vhd(version, readonly=True)
    try:
        assert store.size == DISK_SIZE
    finally:
        store.close()
