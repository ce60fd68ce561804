"""The installer ISO (tests/support/installer_iso.py) installs a bootable disk over the
network, before bootsrv's `image install` exists: iPXE hooks an empty iSCSI disk served
by bootsrv and sanboots the ISO over HTTP (ranged reads); the ISO's Linux logs in from
the iBFT and writes the golden disk onto it. The disk then reads back as the golden image
and boots diskless like it; under SeaBIOS and under OVMF."""

from __future__ import annotations

import http.client
import shutil
import threading

import pytest

from target.stores.vhd.create import create_dynamic
from tests.support import installer_lab as lab
from tests.support import rangehttp
from tests.support.installer_iso import golden_raw, installer_iso
from tests.support.linux_boot import FIRMWARES, assert_clean_boot
from tests.support.linux_image import DISK_SIZE
from tests.support.netboot import start_bootsrv

pytestmark = pytest.mark.e2e


LOADERS = {"bios": ("ISOLINUX", "SYSLINUX"), "uefi": ("GRUB", "GRUB")}  # the ISO's, the installed disk's


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("firmware", FIRMWARES)
def test_installer_iso_writes_a_disk_that_boots_like_the_golden_image(lab_netns, linux_golden, tmp_path, firmware):
    golden, iso = linux_golden, installer_iso()
    disk = tmp_path / "disk.vhd"
    create_dynamic(disk, DISK_SIZE)
    (tmp_path / "http").mkdir()
    shutil.copyfile(iso, tmp_path / "http" / lab.ISO_NAME)
    server_log = start_bootsrv(lab_netns, tmp_path, lab.bootsrv_config(disk))
    lab.start_http(lab_netns, tmp_path / "http", tmp_path / "http.log")
    lab.start_dnsmasq(lab_netns, tmp_path)

    lab.set_script(tmp_path, lab.install_script())
    install = lab.power_on_once(lab_netns, tmp_path, firmware, "install")
    report = f"the installer's console:\n{install.text[-6000:]}"
    assert install.failures() == [], report
    assert install.boot_errors() == [], report
    assert install.kernel_errors() == [], report
    said = install.said()
    assert f"bootloader {LOADERS[firmware][0]}" in said, report  # the ISO's loader
    assert said[-3:] == [f"disk /dev/sda: {DISK_SIZE} bytes", "installed onto /dev/sda", "installer done"], report
    assert lab.range_reads(tmp_path / "http.log") > 0, "iPXE never read the ISO with ranged GETs"
    assert f"{lab.INITIATOR} logged in to {lab.TARGET}" in server_log()
    assert golden_raw(disk) == golden_raw(golden), "the installed disk does not read back as the golden image"

    lab.set_script(tmp_path, lab.disk_script())
    booted = lab.power_on_once(lab_netns, tmp_path, firmware, "boot")
    assert_clean_boot("ws01", booted)
    assert f"bootloader {LOADERS[firmware][1]}" in booted.said(), booted.text[-3000:]
    assert f"image golden {golden.parent.name}" in booted.said(), booted.text[-3000:]
    assert booted.files == ["sums"], booted.text[-3000:]  # a fresh golden disk: no earlier boot's files
    assert "Traceback" not in server_log()


def test_range_server_answers_what_ipxe_asks(tmp_path):
    """HEAD for the size, then `Range: bytes=a-b` reads on one kept-alive connection."""
    data = bytes(range(256)) * 64
    (tmp_path / "disk.iso").write_bytes(data)
    server = rangehttp.serve(tmp_path, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)
        conn.request("HEAD", "/disk.iso")
        head = conn.getresponse()
        head.read()
        assert (head.status, head.getheader("Content-Length"), head.getheader("Accept-Ranges")) == \
            (200, str(len(data)), "bytes")
        for wanted, start, end in (("2048-4095", 2048, 4095), ("16000-", 16000, len(data) - 1),
                                   ("-100", len(data) - 100, len(data) - 1)):
            conn.request("GET", "/disk.iso", headers={"Range": f"bytes={wanted}"})
            part = conn.getresponse()
            assert part.status == 206 and part.read() == data[start:end + 1]
            assert part.getheader("Content-Range") == f"bytes {start}-{end}/{len(data)}"
        conn.request("GET", "/disk.iso", headers={"Range": f"bytes={len(data)}-"})
        beyond = conn.getresponse()
        beyond.read()
        assert beyond.status == 416
        conn.request("GET", "/../disk.iso/../../etc/passwd")
        outside = conn.getresponse()
        outside.read()
        assert outside.status == 404
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
