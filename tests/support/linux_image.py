"""A real Linux golden image for the network-boot tests, built from Debian packages.

One disk boots both ways, as hybrid install images do: an MBR (SYSLINUX's boot code) with
  1. an active FAT partition: SYSLINUX for BIOS, GRUB as EFI/BOOT/BOOTX64.EFI for UEFI,
     a Debian kernel and a busybox initramfs carrying open-iscsi's `iscsistart`;
  2. an ext4 root filled by `mke2fs -d` (no loop mounts).
The initramfs does what a distribution's does on an iSCSI root: reads the iBFT that iPXE
left, logs in with the kernel initiator (`iscsistart -b`), mounts the root, and then runs
the OS's own DHCP client on the boot NIC. It then writes, syncs and powers off, printing
`bootsrv-linux:` lines on COM1 for the test to read: among them the files in /client and
which clients wrote them (each boot's after-dhcp-N names its writer, from the iBFT's
initiator name), so a test can tell an image's files from a client's own.

The same initramfs runs the online-extend scenario instead when the kernel command line
asks for it (EXTEND_ARG, booted directly by QEMU with the kernel and initramfs kept beside
the image, see boot_files()): a static address, a kernel-initiator login to the named
target, a mounted whole-disk ext4 that is grown online (rescan, resize2fs) and checked
(e2fsck) once unmounted. Its lines are listed in EXTEND.

Built once per content (the packages, this file, the host's boot tools) under
build/linux/<hash>/ (golden.vhd, vmlinuz, initrd.img); every test that boots Linux shares it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from target.stores.vhd import open_vhd
from target.stores.vhd.create import create_dynamic
from tests.support import paths

BUILD = paths.BUILD / "linux"
SAY = "bootsrv-linux:"  # every line the image prints for the tests starts with this

# iscsistart is dynamically linked: its libraries come from Debian too, not from the host.
# e2fsprogs (resize2fs, e2fsck) for the extend scenario, with its libraries.
PACKAGES = ("busybox-static", "open-iscsi", "libopeniscsiusr", "libc6", "libssl3", "libkmod2", "libzstd1",
            "liblzma5", "e2fsprogs", "libext2fs2", "libcom-err2", "libblkid1", "libuuid1")
E2FSPROGS = ("resize2fs", "e2fsck")  # in /sbin of the initramfs
# NIC, iBFT, iSCSI initiator, SCSI disk, ext4 (whose checksums need crc32c).
MODULES = ("crc32c_generic", "e1000", "iscsi_ibft", "iscsi_tcp", "sd_mod", "ext4",
           "virtio_pci", "virtio_net")  # virtio: the NIC of the UEFI HTTP boot test (OVMF drives it itself)
HOST_TOOLS = ("syslinux", "syslinux-common", "mtools", "dosfstools", "e2fsprogs", "grub-efi-amd64-bin",
              "grub-common")
GRUB_MODULES = "part_msdos fat search search_fs_file linux normal echo test efi_gop"  # gop: the kernel's screen

SECTOR = 512
FAT_START = 2048  # sectors: the usual 1 MiB alignment
FAT_SECTORS = 40 << 11  # 40 MiB: kernel (8 MiB), initramfs, GRUB
ROOT_SECTORS = 24 << 11  # 24 MiB of ext4
DISK_SIZE = (FAT_START + FAT_SECTORS + ROOT_SECTORS) * SECTOR
KERNEL_ARGS = "console=ttyS0,115200 loglevel=6 panic=-1"

# What every init of these images starts with: busybox, the kernel's file systems, and
# say/fail, whose lines the tests read on COM1.
SHELL_START = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say() { echo "@SAY@ $*"; }
fail() { say "FAILED: $*"; dmesg | tail -20; sync; poweroff -f; }
"""
# The boot NIC and its address, from the iBFT the boot firmware (iPXE) left: $dev $ip $prefix.
IBFT_NIC = r"""mac=$(cat /sys/firmware/ibft/ethernet0/mac)
dev=
for nic in /sys/class/net/*; do [ "$(cat $nic/address)" = "$mac" ] && dev=${nic##*/}; done
[ -n "$dev" ] || fail "no NIC with the iBFT's MAC $mac"
ip=$(cat /sys/firmware/ibft/ethernet0/ip-addr)
prefix=$(cat /sys/firmware/ibft/ethernet0/prefix-len 2>/dev/null || echo 24)
say "iBFT: $dev $ip/$prefix initiator $(cat /sys/firmware/ibft/initiator/initiator-name)" \
    "target $(cat /sys/firmware/ibft/target0/target-name)"
"""

INIT = SHELL_START + r"""say "init started"
case " $(cat /proc/cmdline) " in *" @EXTEND_ARG@="*) exec /bin/sh /extend ;; esac
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m.ko || say "insmod $m failed"; done
[ -d /sys/firmware/ibft/ethernet0 ] || fail "no iBFT from the boot firmware"
""" + IBFT_NIC + r"""ip link set lo up
ip link set "$dev" up
ip addr add "$ip/$prefix" dev "$dev"
iscsistart -b || fail "iscsistart -b could not log in from the iBFT"
n=0
while [ ! -b /dev/sda2 ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
mount -t ext4 /dev/sda2 /root || fail "cannot mount the root /dev/sda2"
say "root mounted"
say "image $(cat /root/etc/bootsrv-image)"
cd /root/client || fail "no /client on the root"
say "files: $(ls | tr '\n' ' ')"
who=$(cat /sys/firmware/ibft/initiator/initiator-name)
who=${who##*.}
say "writers: $(cat after-dhcp-* 2>/dev/null | sed -n 's/.* by //p' | tr '\n' ' ')"
[ ! -s sums ] || md5sum -c -s sums || fail "files from earlier boots do not match their sums"
boot=$(( $(ls | grep -c '^data-') + 1 ))
head -c 1048576 /dev/urandom > data-$boot
md5sum data-* > sums
sync
say "wrote data-$boot"
if udhcpc -i "$dev" -n -q -t 4 -T 2 -s /bin/true >/tmp/udhcpc.log 2>&1; then
    say "OS DHCP: $(grep -o 'lease of [0-9.]* obtained' /tmp/udhcpc.log)"
else
    say "OS DHCP: no lease"
fi
echo "after the OS's DHCP, by $who" > after-dhcp-$boot
sync
echo 3 > /proc/sys/vm/drop_caches
md5sum -c -s sums || fail "the disk changed under the mounted root after the OS's DHCP"
say "verified after DHCP"
cd /
umount /root || fail "umount"
say "done"
poweroff -f
"""

# The extend scenario (/extend), run instead of the boot above when the kernel command line
# has EXTEND_ARG=<target-iqn>@<portal-ip>[:<port>], with bootsrv.ip=<ip>/<prefix>,
# bootsrv.initiator=<iqn> and optionally bootsrv.nic=<name> (else the only NIC).
EXTEND_ARG = "bootsrv.extend"
EXTEND_FILE_MIB = 40  # written into the grown file system: more than a small disk held before
EXTEND = r"""#!/bin/busybox sh
say() { echo "@SAY@ $*"; }
fail() { say "FAILED: $*"; dmesg | tail -20; sync; poweroff -f; }
arg() { for word in $(cat /proc/cmdline); do case "$word" in "$1"=*) echo "${word#*=}"; return ;; esac; done; }
fs_kib() { df -k /mnt | awk 'NR == 2 { print $2 }'; }
say "extend scenario started"
for m in $(cat /lib/modules/load-order); do
    [ "$m" = iscsi_ibft ] || insmod /lib/modules/$m.ko || say "insmod $m failed"
done
spec=$(arg @EXTEND_ARG@)
target=${spec%@*}
portal=${spec##*@}
portal_ip=${portal%:*}
port=${portal##*:}
[ "$port" != "$portal" ] || port=3260
address=$(arg bootsrv.ip)
initiator=$(arg bootsrv.initiator)
[ -n "$target" ] && [ -n "$address" ] && [ -n "$initiator" ] \
    || fail "the kernel command line needs @EXTEND_ARG@=, bootsrv.ip= and bootsrv.initiator="
dev=$(arg bootsrv.nic)
n=0
while [ -z "$dev" ]; do
    nics=$(ls /sys/class/net | grep -v '^lo$')
    [ $(echo $nics | wc -w) -eq 1 ] && dev=$nics
    [ -n "$dev" ] || [ $n -lt 100 ] || fail "cannot tell which NIC to use: '$nics' (give bootsrv.nic=)"
    [ -n "$dev" ] || sleep 0.1
    n=$((n + 1))
done
ip link set lo up
ip link set "$dev" up
ip addr add "$address" dev "$dev" || fail "cannot give $dev the address $address"
say "network: $dev $address"
iscsistart -i "$initiator" -t "$target" -g 1 -a "$portal_ip" -p "$port" \
    || fail "iscsistart could not log in to $target at $portal_ip:$port as $initiator"
say "logged in: $target at $portal_ip:$port as $initiator"
n=0
while [ ! -b /dev/sda ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
[ -b /dev/sda ] || fail "no /dev/sda after the login"
ln -sf /proc/mounts /etc/mtab
mkdir -p /mnt
mount -t ext4 /dev/sda /mnt || fail "cannot mount the whole-disk ext4 /dev/sda"
say "mounted /dev/sda"
head -c 1048576 /dev/urandom > /mnt/before-extend
sync
old=$(cat /sys/block/sda/size)
before=$(fs_kib)
say "disk sectors: $old"
say "fs KiB before: $before"
say "waiting for a bigger disk"
new=$old
n=0
while [ "$new" -le "$old" ]; do
    [ $n -lt 300 ] || fail "the disk stayed at $old sectors after $n rescans"
    sleep 1
    echo 1 > /sys/block/sda/device/rescan
    new=$(cat /sys/block/sda/size)
    n=$((n + 1))
done
say "rescan: $new sectors"
resize2fs /dev/sda > /tmp/resize2fs.log 2>&1
rc=$?
sed "s/^/@SAY@ resize2fs said: /" /tmp/resize2fs.log
say "resize2fs exit: $rc"
[ $rc -eq 0 ] || fail "resize2fs /dev/sda exited $rc"
grep -q '^/dev/sda /mnt ' /proc/mounts && say "still mounted: yes" || say "still mounted: no"
after=$(fs_kib)
say "fs KiB after: $after"
[ "$after" -gt "$before" ] || fail "the file system did not grow: $before KiB, then $after KiB"
head -c $((@FILE_MIB@ * 1048576)) /dev/urandom > /mnt/after-extend || fail "cannot write into the new space"
cd /mnt
md5sum before-extend after-extend > /tmp/sums
sync
echo 3 > /proc/sys/vm/drop_caches
md5sum -c -s /tmp/sums || fail "the files read back differently"
say "wrote after-extend: @FILE_MIB@ MiB"
say "files: $(ls | tr '\n' ' ')"
cd /
umount /mnt || fail "umount /mnt"
say "unmounted"
e2fsck -fn /dev/sda > /tmp/e2fsck.log 2>&1
rc=$?
sed "s/^/@SAY@ e2fsck said: /" /tmp/e2fsck.log
say "e2fsck exit: $rc"
say "extend done"
sync
poweroff -f
"""

SYSLINUX_CFG = f"""SERIAL 0 115200
SAY {SAY} bootloader SYSLINUX
PROMPT 0
TIMEOUT 0
DEFAULT linux
LABEL linux
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND {KERNEL_ARGS}
"""

GRUB_CFG = f"""set timeout=0
echo "{SAY} bootloader GRUB"
search --no-floppy --file /vmlinuz --set=root
linux /vmlinuz {KERNEL_ARGS}
initrd /initrd.img
boot
"""


def run_tool(*cmd: str | Path, cwd: Path | None = None) -> str:
    """Run a build tool; its output, or a RuntimeError with all it said."""
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout


def kernel_package() -> str:
    """The versioned kernel that Debian's linux-image-amd64 points at."""
    depends = run_tool("apt-cache", "depends", "linux-image-amd64")
    found = re.search(r"Depends: (linux-image-[0-9][^\s]*-amd64)", depends)
    if found is None:
        raise RuntimeError(f"cannot tell the kernel package from:\n{depends}")
    return found.group(1)


def download(packages: list[str], into: Path) -> list[Path]:
    """The packages' .deb files, downloaded once into `into` (named with their versions)."""
    into.mkdir(parents=True, exist_ok=True)
    wanted: list[Path] = []
    missing: list[str] = []
    for line in run_tool("apt-get", "download", "--print-uris", *packages).splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        deb = into / fields[1]
        wanted.append(deb)
        if not deb.exists():
            missing.append(fields[0].strip("'").rsplit("/", 1)[-1].split("_", 1)[0])
    if len(wanted) != len(packages):
        raise RuntimeError(f"apt-get download --print-uris gave {len(wanted)} files for {len(packages)} packages")
    if missing:
        run_tool("apt-get", "download", *missing, cwd=into)
    return sorted(wanted)


def content_key(debs: list[Path]) -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for deb in debs:
        digest.update(deb.name.encode())
        digest.update(hashlib.sha256(deb.read_bytes()).digest())
    digest.update(run_tool("dpkg-query", "-W", *HOST_TOOLS).encode())
    return digest.hexdigest()[:16]


def golden_image() -> Path:
    """Path of the built golden VHD (building it on first use)."""
    debs = download([kernel_package(), *PACKAGES], BUILD / "debs")
    done = BUILD / content_key(debs)
    image = done / "golden.vhd"
    if image.exists():
        return image
    BUILD.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=BUILD, prefix="building-") as scratch:
        work = Path(scratch)
        tree = work / "tree"
        for deb in debs:
            run_tool("dpkg-deb", "-x", deb, tree)
        (work / "initrd.img").write_bytes(initramfs(tree))
        raw = disk(tree, work, done.name)
        vhd = work / "golden.vhd"
        raw_to_vhd(raw, vhd)
        (work / "out").mkdir()
        # What QEMU boots directly (-kernel, -initrd, see boot_files), beside the image.
        shutil.copyfile(next((tree / "boot").glob("vmlinuz-*")), work / "out" / "vmlinuz")
        shutil.copyfile(work / "initrd.img", work / "out" / "initrd.img")
        vhd.rename(work / "out" / "golden.vhd")
        shutil.rmtree(done, ignore_errors=True)
        (work / "out").rename(done)  # appears whole or not at all
    for stale in BUILD.iterdir():  # images of older contents: nothing uses them any more
        if re.fullmatch(r"[0-9a-f]{16}", stale.name) and stale != done:
            shutil.rmtree(stale, ignore_errors=True)
    return image


def boot_files() -> tuple[Path, Path]:
    """The image's kernel and initramfs (vmlinuz, initrd.img beside golden.vhd; built on first
    use), for QEMU's direct kernel boot: the extend scenario needs no firmware, iPXE or iBFT."""
    done = golden_image().parent
    return done / "vmlinuz", done / "initrd.img"


# --- the initramfs -------------------------------------------------------------------------

def _module_index(tree: Path) -> dict[str, Path]:
    return {p.name[:-3].replace("-", "_"): p for p in (tree / "lib" / "modules").rglob("*.ko")}


def _module_depends(module: Path) -> list[str]:
    found = re.search(rb"depends=([^\0]*)\0", module.read_bytes())
    return [d.replace("-", "_") for d in found.group(1).decode().split(",") if d] if found else []


def module_load_order(tree: Path) -> list[tuple[str, Path]]:
    """MODULES with everything they depend on, each after its dependencies."""
    index = _module_index(tree)
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        if name not in index:
            raise RuntimeError(f"kernel module {name} is not in the kernel package")
        for dependency in _module_depends(index[name]):
            visit(dependency)
        order.append(name)

    for name in MODULES:
        visit(name)
    return [(name, index[name]) for name in order]


def _needed_libraries(binary: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run_tool("readelf", "-d", binary))


def library_closure(tree: Path, binary: Path) -> dict[str, Path]:
    """soname -> file in the extracted packages, for `binary` and what its libraries need."""
    search = [tree / "lib" / "x86_64-linux-gnu", tree / "usr" / "lib" / "x86_64-linux-gnu"]
    found: dict[str, Path] = {}
    pending = _needed_libraries(binary)
    while pending:
        soname = pending.pop()
        if soname in found:
            continue
        path = next((d / soname for d in search if (d / soname).exists()), None)
        if path is None:
            raise RuntimeError(f"{binary.name} needs {soname}, which none of {PACKAGES} provides")
        found[soname] = path.resolve()
        pending += _needed_libraries(path.resolve())
    return found


class Cpio:
    """The kernel's initramfs format (cpio "newc"), written without root or a cpio tool."""

    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.inode = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        fields = (self.inode, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0)
        self.inode += 1
        self.out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0")
        self.out.write(b"\0" * (-self.out.tell() % 4))
        self.out.write(data)
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def directory(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, 0o120777, target.encode())

    def char_device(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def initramfs(tree: Path) -> bytes:
    archive = Cpio()
    for name in ("bin", "sbin", "dev", "proc", "sys", "run", "tmp", "root", "etc", "lib", "lib/modules",
                 "lib/x86_64-linux-gnu", "lib64", "var", "var/lock", "etc/iscsi", "mnt"):
        archive.directory(name)
    archive.char_device("dev/console", 5, 1)
    archive.file("init", INIT.replace("@SAY@", SAY).replace("@EXTEND_ARG@", EXTEND_ARG).encode(), 0o755)
    extend = EXTEND.replace("@SAY@", SAY).replace("@EXTEND_ARG@", EXTEND_ARG).replace("@FILE_MIB@",
                                                                                        str(EXTEND_FILE_MIB))
    archive.file("extend", extend.encode(), 0o755)
    archive.file("bin/busybox", (tree / "bin" / "busybox").read_bytes(), 0o755)
    iscsistart = tree / "sbin" / "iscsistart"
    archive.file("sbin/iscsistart", iscsistart.read_bytes(), 0o755)
    libraries = library_closure(tree, iscsistart)
    for tool in E2FSPROGS:
        archive.file(f"sbin/{tool}", (tree / "sbin" / tool).read_bytes(), 0o755)
        libraries |= library_closure(tree, tree / "sbin" / tool)
    for soname, path in sorted(libraries.items()):
        archive.file(f"lib/x86_64-linux-gnu/{soname}", path.read_bytes(), 0o755)
    loader = (tree / "lib" / "x86_64-linux-gnu" / "ld-linux-x86-64.so.2").resolve()
    archive.file("lib64/ld-linux-x86-64.so.2", loader.read_bytes(), 0o755)
    order = module_load_order(tree)
    for name, path in order:
        archive.file(f"lib/modules/{name}.ko", path.read_bytes())
    archive.file("lib/modules/load-order", "".join(f"{name}\n" for name, _ in order).encode())
    return gzip.compress(archive.finish(), compresslevel=9, mtime=0)


# --- the disk --------------------------------------------------------------------------------

def _partition_entry(active: bool, kind: int, start: int, sectors: int) -> bytes:
    chs_max = b"\xfe\xff\xff"  # beyond CHS: loaders use the LBA fields
    return (bytes([0x80 if active else 0]) + chs_max + bytes([kind]) + chs_max
            + start.to_bytes(4, "little") + sectors.to_bytes(4, "little"))


def boot_partition(tree: Path, work: Path) -> Path:
    fat = work / "boot.fat"
    run_tool("mkfs.fat", "-C", "-F", "32", "-h", str(FAT_START), "-n", "BOOTSRV", fat, str(FAT_SECTORS // 2))
    kernel = next((tree / "boot").glob("vmlinuz-*"))
    (work / "syslinux.cfg").write_text(SYSLINUX_CFG)
    (work / "grub.cfg").write_text(GRUB_CFG)
    efi = work / "BOOTX64.EFI"
    run_tool("grub-mkstandalone", "-O", "x86_64-efi", "-o", efi, f"--modules={GRUB_MODULES}",
         f"--install-modules={GRUB_MODULES}", "--locales=", "--fonts=", "--themes=",
         f"boot/grub/grub.cfg={work / 'grub.cfg'}")
    on_fat = ("-i", str(fat))
    run_tool("mcopy", *on_fat, kernel, "::vmlinuz")
    run_tool("mcopy", *on_fat, work / "initrd.img", "::initrd.img")
    run_tool("mcopy", *on_fat, work / "syslinux.cfg", "::syslinux.cfg")
    run_tool("mmd", *on_fat, "::EFI", "::EFI/BOOT")
    run_tool("mcopy", *on_fat, efi, "::EFI/BOOT/BOOTX64.EFI")
    run_tool("syslinux", "--install", fat)
    return fat


def root_partition(work: Path, key: str) -> Path:
    root = work / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "client").mkdir()
    (root / "etc" / "bootsrv-image").write_text(f"golden {key}\n")
    (root / "client" / "sums").write_text("")
    ext4 = work / "root.ext4"
    run_tool("mke2fs", "-q", "-t", "ext4", "-L", "root", "-d", root, ext4, f"{ROOT_SECTORS // 2}k")
    return ext4


def disk(tree: Path, work: Path, key: str) -> Path:
    raw = work / "disk.raw"
    mbr = bytearray(SECTOR)
    code = Path("/usr/lib/syslinux/mbr/mbr.bin").read_bytes()
    mbr[: len(code)] = code
    mbr[446:462] = _partition_entry(True, 0x0C, FAT_START, FAT_SECTORS)  # FAT32, LBA (an ESP is FAT32)
    mbr[462:478] = _partition_entry(False, 0x83, FAT_START + FAT_SECTORS, ROOT_SECTORS)
    mbr[510:512] = b"\x55\xaa"
    with open(raw, "wb") as out:
        out.truncate(DISK_SIZE)
        out.write(mbr)
        out.seek(FAT_START * SECTOR)
        out.write(boot_partition(tree, work).read_bytes())
        out.seek((FAT_START + FAT_SECTORS) * SECTOR)
        out.write(root_partition(work, key).read_bytes())
    return raw


def raw_to_vhd(raw: Path, vhd: Path, chunk: int = 1 << 20) -> None:
    """A dynamic VHD with the raw disk's contents (zero chunks left unallocated)."""
    create_dynamic(vhd, DISK_SIZE)
    store = open_vhd(vhd)
    try:
        with open(raw, "rb") as source:
            for offset in range(0, DISK_SIZE, chunk):
                data = source.read(chunk)
                if data.strip(b"\0"):
                    store.write(offset, data)
        store.flush()
    finally:
        store.close()


if __name__ == "__main__":  # build by hand: python -m tests.support.linux_image
    print(golden_image())
