"""The Debian package in a test: built as `make deb` builds it, judged by lintian, and installed
with `dpkg -i` into a throw-away root.

The root is the host's own root file system under an overlay, in a private mount namespace
(`unshare --mount`): dpkg, its real database (so Depends on libc6 and zlib1g is checked, not
forced), deb-systemd-helper and a shell are all there, and everything the package writes goes
to a tmpfs that disappears with the namespace. /run and /tmp are fresh tmpfs mounts, so the
maintainer scripts find no running systemd and talk to nothing on the host."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.paths import REPO
from tests.support.tools import require_tool

CHROOT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}

# Runs in the new mount namespace: an overlay over / at $1/root, fresh /run and /tmp, the host's
# /dev and a /proc; then it stays alive as the namespace's anchor until the test kills it.
_NAMESPACE_SCRIPT = """
set -e
mkdir -p "$1/rw" "$1/root"
mount -t tmpfs bdeb-rw "$1/rw"
mkdir "$1/rw/upper" "$1/rw/work"
mount -t overlay bdeb-root -o lowerdir=/,upperdir="$1/rw/upper",workdir="$1/rw/work" "$1/root"
mount --bind /dev "$1/root/dev"
mount -t proc proc "$1/root/proc"
mount -t tmpfs bdeb-run "$1/root/run"
mount -t tmpfs bdeb-tmp "$1/root/tmp"
echo ready
exec sleep infinity
"""


def build_deb(binary: Path, out: Path) -> Path:
    """packaging/deb/build.py over BINARY, the script `make deb` runs: OUT/bootsrv_VERSION_amd64.deb."""
    done = subprocess.run([sys.executable, str(REPO / "packaging" / "deb" / "build.py"), "--binary", str(binary),
                           "--out", str(out), "--work", str(out / "work")],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"the package build failed:\n{done.stdout}\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class LintianTag:
    severity: str  # E, W, I, P, X, O
    tag: str
    detail: str


def lintian(deb: Path) -> list[LintianTag]:
    """Every tag lintian reports for DEB, informational and pedantic ones included."""
    require_tool("lintian")
    done = subprocess.run(["lintian", "--info", "--pedantic", "--display-experimental", str(deb)],
                          capture_output=True, text=True, timeout=600)
    # 0: ran; 2: ran and found errors (the caller asserts on the tags); 1: lintian itself failed.
    assert done.returncode in (0, 2), f"lintian failed:\n{done.stdout}\n{done.stderr}"
    tags = []
    for line in done.stdout.splitlines():
        match = re.match(r"^([EWIPXO]): bootsrv(?: \(\w+\))?: (\S+)\s*(.*)$", line)
        if match:
            tags.append(LintianTag(*match.groups()))
    return tags


class OverlayRoot:
    """A root to `dpkg -i` into (see the module's docstring); commands run chrooted into it."""

    def __init__(self, where: Path) -> None:
        self.where = where
        self.root = where / "root"  # its path inside the namespace (outside it is an empty folder)
        self.anchor: subprocess.Popen | None = None

    def __enter__(self) -> OverlayRoot:
        require_tool("unshare")
        self.anchor = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                        _NAMESPACE_SCRIPT, "sh", str(self.where)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.anchor.stdout.readline().strip() != "ready":
            self.anchor.wait(30)
            raise AssertionError(f"could not make the overlay root: {self.anchor.stderr.read()}")
        return self

    def __exit__(self, *exc: object) -> None:
        # The anchor is the namespace's last process: with it gone the overlay and tmpfs go too.
        assert self.anchor is not None
        self.anchor.send_signal(signal.SIGTERM)
        self.anchor.wait(30)

    def _enter(self, chrooted: bool) -> list[str]:
        assert self.anchor is not None
        enter = ["nsenter", f"--mount=/proc/{self.anchor.pid}/ns/mnt"]
        return enter + ["chroot", str(self.root)] if chrooted else enter

    def copy_in(self, source: Path, dest: str) -> None:
        subprocess.run(self._enter(False) + ["cp", str(source), f"{self.root}{dest}"], check=True, timeout=60)

    def run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(self._enter(True) + cmd, capture_output=True, text=True, env=CHROOT_ENV, timeout=300)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} (in the root) exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def popen(self, cmd: list[str], log: Path) -> subprocess.Popen:
        """A long-running command in the root; nsenter and chroot exec it, so its PID is the command's."""
        with open(log, "wb") as handle:
            return subprocess.Popen(self._enter(True) + cmd, stdout=handle, stderr=subprocess.STDOUT, env=CHROOT_ENV)
