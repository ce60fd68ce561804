"""Diskless machines that boot the real Linux of tests/support/linux_image.py, and what
their consoles say. BIOS: SeaBIOS + iPXE's e1000 ROM; UEFI: OVMF + the same NIC, whose ROM
carries an EFI iPXE. Both print everything on COM1: SeaBIOS copies the option ROMs' text
console there (sercon), OVMF mirrors its console there."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from snapshots.files import file_sha256
from tests.support.linux_image import SAY

OVMF = Path("/usr/share/qemu/OVMF.fd")
FIRMWARES = ("bios", "uefi")
# iPXE reports failures as "... : Error 0x3e1e2001 (http://ipxe.org/3e1e2001)" or "Could not ...";
# GRUB's start with "error:", SYSLINUX's with "Boot failed" or "Could not find kernel image".
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOOT_ERROR = re.compile(r"Error 0x[0-9a-f]{8}|Could not |No more network devices|No bootable device|"
                        r"^\s*error: |Boot failed", re.I)


def linux_client(firmware: str, serial: Path, mac: str, tap: str, qemu: str = "qemu-system-x86_64") -> list[str]:
    """The QEMU command line of a diskless machine on `tap`, its COM1 written to `serial`."""
    net = ["-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no", "-device", f"e1000,netdev=n0,mac={mac}"]
    common = ["-display", "none", "-monitor", "none", "-serial", f"file:{serial}", "-no-reboot"]
    if firmware == "bios":
        sercon = serial.with_suffix(".sercon")
        sercon.write_bytes((0x3F8).to_bytes(2, "little"))  # SeaBIOS: copy the text console to COM1
        return [qemu, "-machine", "pc,accel=tcg", "-m", "384", *common, *net, "-boot", "n",
                "-fw_cfg", f"name=etc/sercon-port,file={sercon}"]
    if firmware == "uefi":  # -nodefaults: no CD-ROM or disk before the NIC in the boot order
        return [qemu, "-machine", "q35,accel=tcg", "-m", "512", "-nodefaults", "-vga", "std", "-bios", str(OVMF),
                *common, *net]
    raise ValueError(f"firmware {firmware!r}: expected one of {FIRMWARES}")


def direct_kernel_client(kernel: Path, initrd: Path, append: str, serial: Path, mac: str, tap: str,
                         qemu: str = "qemu-system-x86_64", memory_mib: int = 384) -> list[str]:
    """The QEMU command line of a BIOS machine on `tap` that boots `kernel` and `initrd` with
    the command line `append` itself (QEMU's direct kernel boot: no network boot, iPXE or
    iBFT), its COM1 written to `serial`. TCG only: KVM does not work on these machines."""
    return [qemu, "-machine", "pc,accel=tcg", "-m", str(memory_mib), "-display", "none", "-monitor", "none",
            "-serial", f"file:{serial}", "-no-reboot",
            "-netdev", f"tap,id=n0,ifname={tap},script=no,downscript=no", "-device", f"e1000,netdev=n0,mac={mac}",
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", append]


@dataclass
class Console:
    """What one boot printed on COM1."""

    text: str

    @classmethod
    def read(cls, serial: Path) -> "Console":
        text = serial.read_bytes().decode(errors="replace") if serial.exists() else ""
        # SeaBIOS's sercon moves its cursor with ANSI sequences, which can land in the
        # middle of a line the loader prints ("bootload\x1b[25;23Her ISOLINUX").
        return cls(ANSI_ESCAPE.sub("", text))

    def said(self) -> list[str]:
        """The image's own report lines, without the prefix."""
        return [line.split(SAY, 1)[1].strip() for line in self.text.splitlines() if SAY in line]

    def value(self, key: str) -> str | None:
        """The text after `key:` in the image's report, if it said so."""
        return next((line[len(key) + 1:].strip() for line in self.said() if line.startswith(key + ":")), None)

    @property
    def files(self) -> list[str] | None:
        listed = self.value("files")
        return None if listed is None else sorted(listed.split())

    @property
    def writers(self) -> list[str]:
        """Which clients wrote the files it found, one per earlier boot (in boot order)."""
        return (self.value("writers") or "").split()

    @property
    def finished(self) -> bool:
        return "done" in self.said()

    def failures(self) -> list[str]:
        return [line for line in self.said() if line.startswith("FAILED")]

    def boot_errors(self) -> list[str]:
        """Error lines of the firmware, iPXE and the bootloader."""
        return [line.strip() for line in self.text.splitlines() if BOOT_ERROR.search(line)]

    def kernel_errors(self) -> list[str]:
        """Lines a kernel prints when its iSCSI disk or file system went wrong under it."""
        signs = ("rejecting I/O to offline device", "EXT4-fs error", "Buffer I/O error", "I/O error, dev sd",
                 "Aborting journal", "detected conn error")
        return [line.strip() for line in self.text.splitlines() if any(s in line for s in signs)]


def wait_powered_off(machines: dict[str, subprocess.Popen], timeout: float = 600) -> None:
    """Wait until every machine has powered itself off (a readiness wait for slow TCG boots,
    not a speed check); one still running after `timeout` is switched off and reported."""
    deadline = time.monotonic() + timeout
    for name, proc in machines.items():
        try:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"{name} did not power off within {timeout:.0f} s") from None


def power_on(lab, tmp_path: Path, firmware: str, machines: dict[str, tuple[str, str]],
             round_name: str) -> dict[str, Console]:
    """Power on the machines (name -> (MAC, tap)) at once and wait until all have powered
    themselves off; what each printed."""
    running = {}
    for name, (mac, tap) in machines.items():
        serial = tmp_path / f"{name}-{round_name}.serial"
        running[name] = lab.popen(linux_client(firmware, serial, mac, tap),
                                  stdout=open(tmp_path / f"{name}-{round_name}.qemu.log", "wb"),
                                  stderr=subprocess.STDOUT)
    wait_powered_off(running)
    return {name: Console.read(tmp_path / f"{name}-{round_name}.serial") for name in running}


def assert_clean_boot(name: str, console: Console) -> None:
    report = f"{name}'s console:\n{console.text[-6000:]}"
    assert console.failures() == [], report
    assert console.finished, report
    assert console.boot_errors() == [], report
    assert console.kernel_errors() == [], report
    # Its own DHCP client asked (no PXEClient vendor class) and the disk stayed as it was under the mount.
    assert (console.value("OS DHCP") or "").startswith("lease of"), report
    assert "verified after DHCP" in console.said(), report


sha256 = file_sha256  # what the image tests compare version files with


# The three machines of the classroom_of_three fixture: name -> (MAC, tap).
THREE_MACHINES = {"ws01": ("52:54:00:12:34:56", "tap0"), "ws02": ("52:54:00:12:34:57", "tap1"),
                  "ws03": ("52:54:00:12:34:58", "tap2")}


def clean_boot_round(lab, tmp_path: Path, round_name: str, *names: str,
                     machines: dict[str, tuple[str, str]] = THREE_MACHINES) -> dict[str, Console]:
    """Boot the named machines at once under SeaBIOS; each must boot cleanly. What each printed."""
    consoles = power_on(lab, tmp_path, "bios", {name: machines[name] for name in names}, round_name)
    for name, console in consoles.items():
        assert_clean_boot(name, console)
    return consoles
