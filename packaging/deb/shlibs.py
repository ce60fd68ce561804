"""The package's Depends: dpkg-shlibdeps over the one-file binary's launcher and over every
ELF object bundled inside it, which run unpacked on the host and load its libc (and the
launcher its zlib). The libraries PyInstaller bundled are the package's own and need nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path


class DependsError(Exception):
    pass


def elf_dynamic(path: Path, tag: str) -> list[str]:
    """The values of one dynamic-section tag (NEEDED, SONAME) of an ELF object, as objdump shows them."""
    shown = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True).stdout
    return re.findall(rf"^\s*{tag}\s+(\S+)$", shown, re.MULTILINE)


def shlib_depends(binary: Path, work: Path) -> str:
    """dpkg-shlibdeps over the launcher and each ELF object bundled in it: the host libraries
    the unpacked program loads (libc, zlib ...), with the versions its symbols need."""
    from PyInstaller.archive.readers import CArchiveReader

    scan = work / "shlibs"
    if scan.exists():
        shutil.rmtree(scan)
    # Laid out as a package build tree (debian/PACKAGE/DEBIAN), so $ORIGIN in the bundled RPATHs
    # resolves and DEBIAN/shlibs can say which libraries the package brings itself.
    package = scan / "debian/bootsrv"
    launcher = package / "usr/bin/bootsrv"
    launcher.parent.mkdir(parents=True)
    shutil.copyfile(binary, launcher)
    objects = [launcher]
    archive = CArchiveReader(str(binary))
    for name in archive.toc:
        data = archive.extract(name)
        if data[:4] == b"\x7fELF":
            objects.append(package / "usr/lib/bootsrv" / name)
            objects[-1].parent.mkdir(parents=True, exist_ok=True)
            objects[-1].write_bytes(data)
    # The bundled libraries serve the unpacked program (the launcher points the loader at them);
    # the launcher itself runs before unpacking and loads the host's (libz.so.1).
    host_only = set(elf_dynamic(launcher, "NEEDED"))
    bundled = [soname for path in objects[1:] for soname in elf_dynamic(path, "SONAME")
               if soname not in host_only and ".so." in soname]  # shlibs names libNAME.so.VERSION only
    (package / "DEBIAN").mkdir()
    (package / "DEBIAN/shlibs").write_text("".join(
        f"{name} {version} bootsrv\n" for name, version in (soname.split(".so.", 1) for soname in bundled)))
    (scan / "debian/control").write_text("Source: bootsrv\n\nPackage: bootsrv\nArchitecture: amd64\n")
    private = sorted({f"-l{path.parent}" for path in objects[1:]})
    done = subprocess.run(["dpkg-shlibdeps", "-O", *private, "--ignore-missing-info", "-xbootsrv",
                           *(f"-e{path}" for path in objects)], cwd=scan, capture_output=True, text=True)
    if done.returncode != 0:
        raise DependsError(f"dpkg-shlibdeps failed: {done.stderr.strip()}")
    line = next((line for line in done.stdout.splitlines() if line.startswith("shlibs:Depends=")), None)
    if line is None:
        raise DependsError(f"dpkg-shlibdeps gave no Depends: {done.stdout!r}")
    return line.removeprefix("shlibs:Depends=")
