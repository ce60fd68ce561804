"""UEFI HTTP boot (issue 20): OVMF's own network stack asks DHCP as HTTPClient (architecture
16), fetches iPXE's EFI build from bootsrv's boot HTTP, and iPXE then asks again as iPXE and
sanboots the client's disk: a real Linux (tests/support/linux_image.py) boots from it, logs
in again from the iBFT, runs its own DHCP client, writes and powers off. One boot, full mode
(proxy mode's answer is unit-tested in tests/bootsrv/dhcp): TCG makes every boot slow."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.support.httpboot_lab import http_boot_namespace, power_on_http_boot
from tests.support.linux_boot import Console, assert_clean_boot, wait_powered_off
from tests.support.netboot import LAB, MAC, start_bootsrv

pytestmark = pytest.mark.e2e


@pytest.fixture
def http_lab():
    yield from http_boot_namespace()


@pytest.mark.timeout(900)
def test_ovmf_http_boots_ipxe_which_boots_linux_from_its_disk(http_lab, linux_golden, tmp_path):
    shutil.copyfile(linux_golden, tmp_path / "golden.vhd")
    server_log = start_bootsrv(http_lab, tmp_path, LAB)

    wait_powered_off({"ws01": power_on_http_boot(http_lab, tmp_path, MAC, "ws01")})
    console = Console.read(tmp_path / "ws01.serial")
    assert "Start HTTP Boot over IPv4" in console.text, console.text[-3000:]  # the firmware's entry, not PXE
    assert_clean_boot("ws01", console)
    assert console.files == ["sums"], console.text[-3000:]  # a fresh disk: the image's files

    log = server_log()
    # The firmware asked as HTTPClient (a power-on) and got iPXE over HTTP, never over TFTP.
    assert re.search(r"ws01 powering on \(DHCPDISCOVER .* vendor class 'HTTPClient:Arch:00016", log), log
    assert re.search(r"HTTP 10\.77\.0\.101 GET /snponly\.efi <- \S*snponly\.efi: 200", log), log
    assert "TFTP 10.77.0.101 <-" not in log, log
    # Then iPXE's own DHCP (user class iPXE) and its sanboot of the client's disk.
    assert re.search(r"ws01 powering on \(DHCPDISCOVER .* user class 'iPXE'", log), log
    assert "initiator.ws01 logged in to iqn.2026-11.lan.bootsrv:ws01" in log
    assert "Traceback" not in log
