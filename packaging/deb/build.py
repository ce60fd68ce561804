"""`make deb`: dist/bootsrv_VERSION_amd64.deb from the one-file binary (make dist).

Stages the package tree under build/deb/root, then `dpkg-deb --build --root-owner-group`.
The man page and the bash completion come from the CLI's argparse tree (argtree.py), the
Depends from dpkg-shlibdeps over the launcher and every shared object bundled inside it.
Run with the project's venv (the CLI tree is imported from the source the binary was built from):
    .venv/bin/python packaging/deb/build.py [--binary dist/bootsrv] [--out dist] [--work build/deb]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from argtree import bootsrv_tree
from bashcomp import completion
from roffman import manpage
from shlibs import DependsError, shlib_depends

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))  # bootsrv itself, when run from a checkout without an editable install

from bootsrv import __version__  # noqa: E402

MAINTAINER = "bootsrv maintainers <maintainers@bootsrv.example.org>"
UNIT_DIR = "lib/systemd/system"  # where bookworm's debhelper puts units (merged /usr sees both)
CONFFILE = "etc/bootsrv/bootsrv.toml"
# rbd: disks load the host's librbd through Debian's Python modules (CPython 3.11, the binary's ABI);
# ipxe has the boot programs a PXE or HTTP-boot client gets from tftp_root.
SUGGESTS = "python3-rbd, python3-rados, ipxe"
DESCRIPTION = """\
boot-and-backup appliance for diskless LAN clients
 bootsrv serves diskless PCs of a LAN from one program and one configuration
 file: DHCP (full or proxy), PXE/iPXE over TFTP, an iSCSI target backed by VHD,
 raw or Ceph RBD disks, golden images with versions, and live snapshots with
 exports for backup. The CLI, the admin socket and a web dashboard drive it.
 .
 This package ships the self-contained one-file build (it bundles its own
 Python runtime)."""


class BuildError(Exception):
    pass


def check_binary(binary: Path) -> None:
    """The binary must be the one the sources describe: a stale dist/bootsrv would get the
    version, man page and completion of a CLI it does not have."""
    if not binary.is_file():
        raise BuildError(f"{binary}: no such file (run `make dist` first)")
    said = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=60).stdout.strip()
    if said != f"bootsrv {__version__}":
        raise BuildError(f"{binary} says {said!r}, the sources are bootsrv {__version__}: rebuild it (make dist)")


def build_date() -> float:
    """The last commit's time (or SOURCE_DATE_EPOCH): the same tree gives the same package."""
    if "SOURCE_DATE_EPOCH" in os.environ:
        return float(os.environ["SOURCE_DATE_EPOCH"])
    done = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True)
    return float(done.stdout.strip()) if done.returncode == 0 and done.stdout.strip() else time.time()


def write(path: Path, data: bytes | str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def gzipped(text: str, date: float) -> bytes:
    # mtime fixed and no file name inside (gzip -n): lintian wants reproducible .gz files.
    return gzip.compress(text.encode(), compresslevel=9, mtime=int(date))


def unit_file() -> str:
    """examples/bootsrv.service with the package's paths, a Documentation key, and without the
    comment on installing it by hand (dpkg does that now)."""
    lines = (REPO / "examples" / "bootsrv.service").read_text().splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("[Unit]")):]
    text = "\n".join(body).replace("/usr/local/bin/bootsrv", "/usr/bin/bootsrv") + "\n"
    return text.replace("\nAfter=", "\nDocumentation=man:bootsrv(1)\nAfter=", 1)


def changelog(date: float) -> str:
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(date))
    return (f"bootsrv ({__version__}) unstable; urgency=medium\n\n"
            f"  * Package of bootsrv {__version__}, the one-file build (make deb).\n\n"
            f" -- {MAINTAINER}  {stamp}\n")


def stage(root: Path, binary: Path, date: float) -> None:
    if root.exists():
        shutil.rmtree(root)
    tree = bootsrv_tree()
    write(root / "usr/bin/bootsrv", binary.read_bytes(), 0o755)
    write(root / UNIT_DIR / "bootsrv.service", unit_file())
    write(root / CONFFILE, (HERE / "bootsrv.toml").read_text())
    (root / "var/lib/bootsrv").mkdir(parents=True)
    write(root / "usr/share/man/man1/bootsrv.1.gz", gzipped(manpage(tree, __version__, date), date))
    write(root / "usr/share/bash-completion/completions/bootsrv", completion(tree, __version__))
    doc = root / "usr/share/doc/bootsrv"
    write(doc / "copyright", (HERE / "copyright").read_text())
    # A native package (the version is bootsrv's own, no Debian revision): its changelog is changelog.gz.
    write(doc / "changelog.gz", gzipped(changelog(date), date))
    write(doc / "README.md.gz", gzipped((REPO / "README.md").read_text(), date))
    for example in sorted((REPO / "examples").glob("*.toml")):
        write(doc / "examples" / example.name, example.read_text())
    for script in ("postinst", "prerm", "postrm"):
        write(root / "DEBIAN" / script, (HERE / script).read_text(), 0o755)
    write(root / "DEBIAN/conffiles", f"/{CONFFILE}\n")
    write(root / "DEBIAN/md5sums", "".join(
        f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.relative_to(root)}\n"
        for path in sorted(root.rglob("*")) if path.is_file() and "DEBIAN" not in path.relative_to(root).parts
        and path != root / CONFFILE))  # as dh_md5sums: dpkg records a conffile's sum itself
    for path in [root, *root.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
        os.utime(path, (date, date), follow_symlinks=False)


def control(root: Path, depends: str) -> str:
    size = sum(path.stat().st_size for path in root.rglob("*") if path.is_file()
               and "DEBIAN" not in path.relative_to(root).parts)
    return (f"Package: bootsrv\nVersion: {__version__}\nArchitecture: amd64\nMaintainer: {MAINTAINER}\n"
            f"Installed-Size: {(size + 1023) // 1024}\nDepends: {depends}\nSuggests: {SUGGESTS}\n"
            f"Section: net\nPriority: optional\nDescription: {DESCRIPTION}\n")


def build(binary: Path, out: Path, work: Path) -> Path:
    check_binary(binary)
    date = build_date()
    root = work / "root"
    stage(root, binary, date)
    write(root / "DEBIAN/control", control(root, shlib_depends(binary, work)))
    os.utime(root / "DEBIAN", (date, date))
    out.mkdir(parents=True, exist_ok=True)
    deb = out / f"bootsrv_{__version__}_amd64.deb"
    # gzip, not xz: the binary is already compressed inside (xz: 0.2% smaller, 20 times slower).
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", "-Zgzip", str(root), str(deb)], check=True,
                   env=dict(os.environ, SOURCE_DATE_EPOCH=str(int(date))), stdout=subprocess.DEVNULL)
    return deb


def main() -> int:
    parser = argparse.ArgumentParser(description="Build the bootsrv Debian package from dist/bootsrv.")
    parser.add_argument("--binary", type=Path, default=REPO / "dist" / "bootsrv")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "deb")
    args = parser.parse_args()
    try:
        print(build(args.binary.resolve(), args.out.resolve(), args.work.resolve()))
    except (BuildError, DependsError) as exc:
        print(f"make deb: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
