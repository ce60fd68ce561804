"""An installer ISO for the `image install` tests: booted with iPXE's `sanboot` of the ISO
over HTTP after a `sanhook` of the client's iSCSI disk, it writes linux_image's golden
disk onto that disk and powers off; the disk then boots like the golden image.

The ISO is a hybrid (like distributions' installers), with two El Torito boot images:
ISOLINUX for BIOS, and for UEFI a small FAT image holding a standalone GRUB that finds the
ISO's files with its own iso9660 driver. Both load the Debian kernel and a busybox
initramfs that carries `iscsistart` and the payload:
sector 0 (SYSLINUX's MBR with the two partitions, built as linux_image.disk() builds it)
and the golden image's FAT and ext4 partitions, read out of golden.vhd, so an installed
disk reads back byte for byte as the golden image. The payload rides in the initramfs
because Linux cannot read the ISO once it runs: iPXE's HTTP SAN drive exists only for the
firmware (int 13h or EFI block I/O; the iBFT describes only the iSCSI disk). /init logs in from the iBFT that iPXE
wrote for the hooked disk, checks the disk's size, writes and syncs, reads it back
against the payload's checksum and prints `bootsrv-linux:` lines on COM1.

Built once per content (the golden image, the packages, this file, the host's tools)
under build/installer/<hash>/installer.iso.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from target.stores.vhd import open_vhd
from tests.support import paths
from tests.support.linux_image import (
    DISK_SIZE, FAT_SECTORS, FAT_START, IBFT_NIC, KERNEL_ARGS, PACKAGES, ROOT_SECTORS, SAY, SECTOR, SHELL_START, Cpio,
    _partition_entry,
    download, golden_image, kernel_package, library_closure, module_load_order, run_tool)

BUILD = paths.BUILD / "installer"
# CI adds xorriso and isolinux to linux_image's tools.
HOST_TOOLS = ("xorriso", "isolinux", "syslinux-common", "grub-efi-amd64-bin", "grub-common", "mtools", "dosfstools")
# iso9660: GRUB reads the kernel from the ISO itself; efi_gop: the kernel's screen.
GRUB_MODULES = "part_msdos part_gpt fat iso9660 search search_fs_file linux normal echo test efi_gop"
EFI_IMAGE_KIB = 4096  # GRUB (about 1 MiB) with room to grow
ISOLINUX = Path("/usr/lib/ISOLINUX")
BIOS_MODULES = Path("/usr/lib/syslinux/modules/bios")
MIB = 1 << 20
ROOT_START = FAT_START + FAT_SECTORS
# The installer writes in MiB blocks: every region of the layout must start on one.
assert FAT_START * SECTOR % MIB == 0 and ROOT_START * SECTOR % MIB == 0 and DISK_SIZE % MIB == 0

INIT = SHELL_START + r"""say "installer started"
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m.ko || say "insmod $m failed"; done
[ -d /sys/firmware/ibft/target0 ] || fail "no iSCSI disk in the iBFT (was it sanhooked?)"
""" + IBFT_NIC + r"""# Only the hooked iSCSI disk should be there: iPXE describes no HTTP SAN device in the iBFT.
say "iBFT targets: $(cd /sys/firmware/ibft && echo target*)"
ip link set lo up
ip link set "$dev" up
ip addr add "$ip/$prefix" dev "$dev"
iscsistart -b || fail "iscsistart -b could not log in from the iBFT"
n=0
while [ ! -b /dev/sda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
[ -b /dev/sda ] || fail "no /dev/sda after the iSCSI login"
size=$(( $(cat /sys/block/sda/size) * 512 ))
[ "$size" -ge @DISK_SIZE@ ] || fail "/dev/sda holds $size bytes, the image needs @DISK_SIZE@"
say "disk /dev/sda: $size bytes"
# Sector 0, then zeros up to the first partition (a used disk may hold anything there).
dd if=/payload/mbr.bin of=/dev/sda bs=512 count=1 2>/dev/null || fail "cannot write the MBR"
dd if=/dev/zero of=/dev/sda bs=512 seek=1 count=@GAP@ 2>/dev/null || fail "cannot clear the gap"
gunzip -c /payload/boot.fat.gz | dd of=/dev/sda bs=1048576 seek=@FAT_MIB@ 2>/dev/null \
    || fail "cannot write the boot partition"
gunzip -c /payload/root.ext4.gz | dd of=/dev/sda bs=1048576 seek=@ROOT_MIB@ 2>/dev/null \
    || fail "cannot write the root partition"
sync
blockdev --flushbufs /dev/sda
echo 3 > /proc/sys/vm/drop_caches
# Read back through the target (the page cache is dropped), against the build's checksum.
got=$(dd if=/dev/sda bs=1048576 count=@DISK_MIB@ 2>/dev/null | md5sum | cut -d' ' -f1)
[ "$got" = "$(cat /payload/disk.md5)" ] || fail "read back $got, wrote $(cat /payload/disk.md5)"
say "installed onto /dev/sda"
say "installer done"
poweroff -f
"""

ISOLINUX_CFG = f"""SERIAL 0 115200
SAY {SAY} bootloader ISOLINUX
PROMPT 0
TIMEOUT 0
DEFAULT install
LABEL install
  LINUX /vmlinuz
  INITRD /install.img
  APPEND {KERNEL_ARGS}
"""


GRUB_CFG = f"""set timeout=0
echo "{SAY} bootloader GRUB"
search --no-floppy --file /install.img --set=root
linux /vmlinuz {KERNEL_ARGS}
initrd /install.img
boot
"""


def mbr() -> bytes:
    """Sector 0 of the golden disk, made as linux_image.disk() makes it."""
    sector = bytearray(SECTOR)
    code = Path("/usr/lib/syslinux/mbr/mbr.bin").read_bytes()
    sector[: len(code)] = code
    sector[446:462] = _partition_entry(True, 0x0C, FAT_START, FAT_SECTORS)
    sector[462:478] = _partition_entry(False, 0x83, ROOT_START, ROOT_SECTORS)
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def golden_raw(golden: Path) -> bytes:
    """The golden disk's DISK_SIZE bytes, as a client reads them."""
    store = open_vhd(golden, readonly=True)
    try:
        return store.read(0, DISK_SIZE)
    finally:
        store.close()


def payload(golden: Path) -> dict[str, bytes]:
    """Files under /payload in the initramfs; the installer writes them at the layout's offsets."""
    raw = golden_raw(golden)
    if raw[:SECTOR] != mbr():
        raise RuntimeError("golden.vhd's sector 0 is not the MBR linux_image.disk() writes: layouts drifted")
    if raw[SECTOR:FAT_START * SECTOR].strip(b"\0"):
        raise RuntimeError("golden.vhd holds data between its MBR and first partition")
    fat = raw[FAT_START * SECTOR:ROOT_START * SECTOR]
    root = raw[ROOT_START * SECTOR:DISK_SIZE]
    return {"mbr.bin": raw[:SECTOR], "boot.fat.gz": gzip.compress(fat, 9, mtime=0),
            "root.ext4.gz": gzip.compress(root, 9, mtime=0),
            "disk.md5": hashlib.md5(raw).hexdigest().encode() + b"\n"}


def init_script() -> str:
    values = {"SAY": SAY, "DISK_SIZE": DISK_SIZE, "GAP": FAT_START - 1, "FAT_MIB": FAT_START * SECTOR // MIB,
              "ROOT_MIB": ROOT_START * SECTOR // MIB, "DISK_MIB": DISK_SIZE // MIB}
    return re.sub(r"@([A-Z_]+)@", lambda m: str(values[m.group(1)]), INIT)


def initramfs(tree: Path, golden: Path) -> bytes:
    archive = Cpio()
    for name in ("bin", "sbin", "dev", "proc", "sys", "run", "tmp", "etc", "lib", "lib/modules",
                 "lib/x86_64-linux-gnu", "lib64", "var", "var/lock", "etc/iscsi", "payload"):
        archive.directory(name)
    archive.char_device("dev/console", 5, 1)
    archive.file("init", init_script().encode(), 0o755)
    archive.file("bin/busybox", (tree / "bin" / "busybox").read_bytes(), 0o755)
    iscsistart = tree / "sbin" / "iscsistart"
    archive.file("sbin/iscsistart", iscsistart.read_bytes(), 0o755)
    for soname, path in sorted(library_closure(tree, iscsistart).items()):
        archive.file(f"lib/x86_64-linux-gnu/{soname}", path.read_bytes(), 0o755)
    loader = (tree / "lib" / "x86_64-linux-gnu" / "ld-linux-x86-64.so.2").resolve()
    archive.file("lib64/ld-linux-x86-64.so.2", loader.read_bytes(), 0o755)
    order = module_load_order(tree)
    for name, path in order:
        archive.file(f"lib/modules/{name}.ko", path.read_bytes())
    archive.file("lib/modules/load-order", "".join(f"{name}\n" for name, _ in order).encode())
    for name, data in payload(golden).items():
        archive.file(f"payload/{name}", data)
    # The payload is gzip already: level 1 spares the build time a second pass would not win back.
    return gzip.compress(archive.finish(), compresslevel=1, mtime=0)


def efi_image(work: Path) -> Path:
    """The UEFI El Torito image: a FAT file system with GRUB as EFI/BOOT/BOOTX64.EFI."""
    (work / "grub.cfg").write_text(GRUB_CFG)
    grub = work / "BOOTX64.EFI"
    run_tool("grub-mkstandalone", "-O", "x86_64-efi", "-o", grub, f"--modules={GRUB_MODULES}",
         f"--install-modules={GRUB_MODULES}", "--locales=", "--fonts=", "--themes=",
         f"boot/grub/grub.cfg={work / 'grub.cfg'}")
    fat = work / "efiboot.img"
    run_tool("mkfs.fat", "-C", "-n", "BOOTSRV_EFI", fat, str(EFI_IMAGE_KIB))
    run_tool("mmd", "-i", fat, "::EFI", "::EFI/BOOT")
    run_tool("mcopy", "-i", fat, grub, "::EFI/BOOT/BOOTX64.EFI")
    return fat


def iso(tree: Path, golden: Path, work: Path) -> Path:
    root = work / "iso"
    (root / "isolinux").mkdir(parents=True)
    shutil.copy(ISOLINUX / "isolinux.bin", root / "isolinux")
    shutil.copy(BIOS_MODULES / "ldlinux.c32", root / "isolinux")
    (root / "isolinux" / "isolinux.cfg").write_text(ISOLINUX_CFG)
    shutil.copy(next((tree / "boot").glob("vmlinuz-*")), root / "vmlinuz")
    (root / "install.img").write_bytes(initramfs(tree, golden))
    shutil.copy(efi_image(work), root / "efiboot.img")
    out = work / "installer.iso"
    run_tool("xorriso", "-as", "mkisofs", "-quiet", "-o", out, "-V", "BOOTSRV_INSTALL",
         "-isohybrid-mbr", ISOLINUX / "isohdpfx.bin", "-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat",
         "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
         "-eltorito-alt-boot", "-e", "efiboot.img", "-no-emul-boot", "-isohybrid-gpt-basdat", "-R", "-J", root)
    return out


def content_key(golden: Path, debs: list[Path]) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(golden.parent.name.encode())  # the golden image's own content key
    for deb in debs:
        digest.update(deb.name.encode())
    digest.update(run_tool("dpkg-query", "-W", *HOST_TOOLS).encode())
    return digest.hexdigest()[:16]


def installer_iso() -> Path:
    """Path of the built installer ISO (building it, and the golden image, on first use)."""
    golden = golden_image()
    debs = download([kernel_package(), *PACKAGES], paths.BUILD / "linux" / "debs")
    done = BUILD / content_key(golden, debs)
    image = done / "installer.iso"
    if image.exists():
        return image
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="building-") as scratch:
        work = Path(scratch)
        tree = work / "tree"
        for deb in debs:
            run_tool("dpkg-deb", "-x", deb, tree)
        built = iso(tree, golden, work)
        (work / "out").mkdir()
        built.rename(work / "out" / "installer.iso")
        shutil.rmtree(done, ignore_errors=True)
        (work / "out").rename(done)  # appears whole or not at all
    for stale in BUILD.iterdir():  # ISOs of older contents: nothing uses them any more
        if re.fullmatch(r"[0-9a-f]{16}", stale.name) and stale != done:
            shutil.rmtree(stale, ignore_errors=True)
    return image


if __name__ == "__main__":  # build by hand: python -m tests.support.installer_iso
    print(installer_iso())
