"""The online-extend acceptance test's pieces: a served [[disk]] holding a whole-disk ext4
(a dynamic VHD), the configuration that serves it to one initiator on the lab's tap0, and a
machine that boots the real Linux of tests/support/linux_image.py directly into its extend
scenario (linux_image.EXTEND): it logs in with the kernel initiator, mounts the disk, waits
until a rescan shows a bigger disk, grows the file system online and checks it."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.config_sample import one_target
from tests.support.cli import run_cli
from tests.support.linux_boot import direct_kernel_client
from tests.support.linux_image import EXTEND_ARG, KERNEL_ARGS, boot_files
from tests.support.netboot import start_bootsrv
from tests.support.tools import run

MiB = 1 << 20
TARGET_IQN = "iqn.2026-11.lan.bootsrv:data"
INITIATOR_IQN = "iqn.2026-11.lan.bootsrv:linux-extend"
PORTAL = "10.77.0.1:3260"  # tap0 of the lab_netns fixture
CLIENT_ADDRESS = "10.77.0.50/24"
CLIENT_MAC = "52:54:00:12:34:60"
WAITING = "waiting for a bigger disk"  # what the machine says once the disk is mounted and written


def config(disk: Path) -> str:
    """One [[disk]] behind one target that only INITIATOR_IQN may log in to."""
    return one_target(PORTAL, "data", disk, TARGET_IQN, INITIATOR_IQN)


def ext4_vhd(tmp_path: Path, size: int, name: str = "data.vhd") -> Path:
    """A dynamic VHD of `size` bytes holding a whole-disk ext4 (1 KiB blocks: 8 MiB groups, so
    growing it adds groups) with a file in it; made by mke2fs -d on a raw file, then converted."""
    content = tmp_path / "ext4-content"
    content.mkdir()
    (content / "made-on-the-host").write_text("an ext4 made by mke2fs -d\n")
    raw = tmp_path / "ext4.raw"
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-L", "data", "-d", str(content), str(raw),
         f"{size // 1024}k"])
    vhd = tmp_path / name
    run_cli("disk", "convert", raw, vhd, "--type", "dynamic", check=True)
    raw.unlink()
    return vhd


def serve(ns, tmp_path: Path, disk: Path, name: str = "extend.toml"):
    """bootsrv serving config(disk) in namespace `ns` (netboot.start_bootsrv): its process,
    a function reading its log, and the configuration file."""
    server_log = start_bootsrv(ns, tmp_path, config(disk), name)
    return ns.processes[-1], server_log, tmp_path / name  # start_bootsrv's popen is the newest


def kernel_cmdline() -> str:
    return (f"{KERNEL_ARGS} {EXTEND_ARG}={TARGET_IQN}@{PORTAL} bootsrv.ip={CLIENT_ADDRESS} "
            f"bootsrv.initiator={INITIATOR_IQN}")


def power_on_extend_client(ns, tmp_path: Path, tap: str = "tap0") -> tuple[subprocess.Popen, Path]:
    """Boot the extend scenario on `tap` of namespace `ns`; the QEMU process and its COM1 file."""
    kernel, initrd = boot_files()
    serial = tmp_path / "extend-client.serial"
    proc = ns.popen(direct_kernel_client(kernel, initrd, kernel_cmdline(), serial, CLIENT_MAC, tap),
                    stdout=open(tmp_path / "extend-client.qemu.log", "wb"), stderr=subprocess.STDOUT)
    return proc, serial


def ext4_on_host(vhd: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, str]:
    """The file system on the VHD, seen by the host's e2fsprogs on a raw copy: `e2fsck -fn`'s
    result and debugfs's long listing of its root directory."""
    raw = tmp_path / "check.raw"
    raw.unlink(missing_ok=True)
    run_cli("disk", "convert", vhd, raw, check=True)
    fsck = run(["e2fsck", "-fn", str(raw)], check=False)
    listing = run(["debugfs", "-R", "ls -l /", str(raw)]).stdout
    raw.unlink()
    return fsck, listing


def stop(proc: subprocess.Popen, timeout: float = 60) -> int:
    """Stop a process we started (by its PID, SIGTERM) and return its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
