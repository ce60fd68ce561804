"""A real Linux boots from bootsrv and lives on its disk (issue 16): iPXE sanboots the
client's differencing disk, SYSLINUX (BIOS) or GRUB (UEFI) loads a Debian kernel and
initramfs through it, and the initramfs logs in again from the iBFT with the kernel's
initiator, mounts its ext4 root, runs its own DHCP client, writes and powers off.

Two machines per classroom: ws01 keeps its changes, ws02 (reset_on_boot) starts again
from the image at every power-on. Each boots twice, in full and in proxy mode, under
SeaBIOS and under OVMF."""

from __future__ import annotations

import shutil

import pytest

from demo.labnet import PROXY_CONFIG
from tests.support.linux_boot import FIRMWARES, Console, assert_clean_boot, power_on, sha256
from tests.support.netboot import TWO_CLIENTS, site_dhcp_server, start_bootsrv

pytestmark = pytest.mark.e2e
MACHINES = {"ws01": ("52:54:00:12:34:56", "tap0"), "ws02": ("52:54:00:12:34:57", "tap1")}
CONFIGS = {
    "full": TWO_CLIENTS.replace('interface = "tap0"', 'interface = "br0"'),
    "proxy": PROXY_CONFIG + """
[[client]]
name = "ws02"
mac = "52:54:00:12:34:57"
image = "golden"
reset_on_boot = true
""",
}


def power_on_classroom(lab, tmp_path, firmware: str, round_name: str) -> dict[str, Console]:
    return power_on(lab, tmp_path, firmware, MACHINES, round_name)


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("mode", ["full", "proxy"])
@pytest.mark.parametrize("firmware", FIRMWARES)
def test_real_linux_boots_from_its_disk_and_keeps_its_files(classroom, linux_golden, tmp_path, firmware, mode):
    lab, site = classroom
    golden = tmp_path / "golden.vhd"
    shutil.copyfile(linux_golden, golden)
    golden_digest = sha256(golden)
    site_leases = site_dhcp_server(site, tmp_path) if mode == "proxy" else None
    server_log = start_bootsrv(lab, tmp_path, CONFIGS[mode])

    first = power_on_classroom(lab, tmp_path, firmware, "first")
    for name, console in first.items():
        assert_clean_boot(name, console)
        assert console.files == ["sums"], f"{name} booted a fresh disk:\n{console.text[-3000:]}"
    second = power_on_classroom(lab, tmp_path, firmware, "second")
    for name, console in second.items():
        assert_clean_boot(name, console)
    assert second["ws01"].files == ["after-dhcp-1", "data-1", "sums"], second["ws01"].text[-3000:]
    assert second["ws02"].files == ["sums"], second["ws02"].text[-3000:]  # reset_on_boot: the image again

    log = server_log()
    # One power-on per boot, the boot ROM's; the OS's own DHCP never counted as one.
    assert log.count("ws01 powering on") == 2, log
    assert log.count("ws02 booted: its disk starts again") == 2, log
    assert "initiator.ws01 logged in to iqn.2026-11.lan.bootsrv:ws01" in log
    if site_leases is not None:
        assert "lease " not in log  # addresses came from the site's server only
        assert "52:54:00:12:34:57" in site_leases.read_text()
    assert sha256(golden) == golden_digest, "the golden image changed"
    assert "Traceback" not in log
