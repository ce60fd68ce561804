"""The Debian package (`make deb`): lintian finds no errors, `dpkg -i` installs it into a fresh
root with its conffile registered and its service enabled, and the installed bootsrv checks and
serves its packaged configuration; the man page renders and the bash completion completes."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.deb import OverlayRoot, build_deb, lintian
from tests.support.ports import free_port
from tests.support.server import READY_LINE
from tests.support.tools import run

pytestmark = pytest.mark.e2e

CONFFILE = "/etc/bootsrv/bootsrv.toml"
IQN = "iqn.2026-11.lan.bootsrv:ws01"

# lintian warnings we ship with, and why.
ACCEPTED_WARNINGS = {
    # PyInstaller's launcher is its prebuilt bootloader (not built with -pie); the Python code it
    # runs is bundled as position-independent shared objects (libpython, the extensions).
    "hardening-no-pie": "PyInstaller's prebuilt bootloader",
}


@pytest.fixture(scope="module")
def deb(one_file_binary, tmp_path_factory) -> Path:
    started = time.monotonic()
    path = build_deb(one_file_binary, tmp_path_factory.mktemp("deb"))
    print(f"{path.name}: {path.stat().st_size / 1e6:.1f} MB, built in {time.monotonic() - started:.1f} s")
    return path


@pytest.fixture(scope="module")
def unpacked(deb, tmp_path_factory) -> Path:
    """The package's files as dpkg-deb extracts them (for what needs no installation)."""
    where = tmp_path_factory.mktemp("unpacked")
    run(["dpkg-deb", "-x", str(deb), str(where)])
    return where


def test_lintian_reports_no_errors(deb):
    tags = lintian(deb)
    for tag in tags:
        print(f"lintian {tag.severity}: {tag.tag} {tag.detail}")
    assert [tag for tag in tags if tag.severity == "E"] == []
    assert {tag.tag for tag in tags if tag.severity == "W"} <= set(ACCEPTED_WARNINGS)


def test_dpkg_installs_it_and_the_installed_bootsrv_serves(deb, tmp_path):
    port = free_port()
    with OverlayRoot(tmp_path / "overlay") as root:
        root.copy_in(deb, f"/tmp/{deb.name}")
        installed = root.run(["dpkg", "-i", f"/tmp/{deb.name}"])
        assert "Setting up bootsrv" in installed.stdout, installed.stdout
        status = root.run(["dpkg-query", "-W", "-f", "${Status} ${Version} ${Conffiles}", "bootsrv"]).stdout
        packaged = root.run(["cat", CONFFILE]).stdout
        assert status.startswith("install ok installed "), status
        assert f"{CONFFILE} {hashlib.md5(packaged.encode()).hexdigest()}" in status, status
        # postinst enabled the unit the way deb-systemd-helper does (no systemd runs in the root).
        root.run(["test", "-L", "/etc/systemd/system/multi-user.target.wants/bootsrv.service"])
        root.run(["test", "-d", "/var/lib/bootsrv"])
        # systemd's own check of the unit: its keys, ExecStart's binary, Documentation's man page.
        verified = root.run(["systemd-analyze", "verify", "/lib/systemd/system/bootsrv.service"])
        assert verified.stderr == "", verified.stderr

        checked = root.run(["bootsrv", "check-config", CONFFILE])
        assert f"{CONFFILE}: ok" in checked.stdout, checked.stdout
        # The admin's first steps: a disk and a target through the installed CLI (it edits the
        # conffile), the portal moved to a free loopback port, and the server started from it.
        root.run(["bootsrv", "disk", "add", "ws01", "/var/lib/bootsrv/disks/ws01.img", "--size", "64MiB"])
        root.run(["bootsrv", "target", "create", IQN, "--disk", "ws01"])
        root.run(["sed", "-i", f"s/0.0.0.0:3260/127.0.0.1:{port}/", CONFFILE])
        # Installed again (the upgrade path of the maintainer scripts): dpkg keeps the edited conffile.
        root.run(["dpkg", "-i", f"/tmp/{deb.name}"])
        assert IQN in root.run(["cat", CONFFILE]).stdout
        log = tmp_path / "server.log"
        server = root.popen(["bootsrv", "serve", "--config", CONFFILE], log)
        try:
            deadline = time.monotonic() + 60  # readiness wait, not a speed assertion
            while READY_LINE not in log.read_text(errors="replace"):
                assert server.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
                time.sleep(0.05)
            listing = run(["iscsi-ls", "-s", f"iscsi://127.0.0.1:{port}"]).stdout
            assert IQN in listing and "Lun:0" in listing, listing
            status_text = root.run(["bootsrv", "status"]).stdout  # the admin socket in /var/lib/bootsrv
            assert "ws01" in status_text, status_text
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(60)
        assert code == 0 and "Traceback" not in log.read_text(), log.read_text()

        # Removal keeps the admin's configuration; purge takes it, and leaves the disks alone.
        root.run(["dpkg", "-r", "bootsrv"])
        assert root.run(["dpkg-query", "-W", "-f", "${Status}", "bootsrv"]).stdout == "deinstall ok config-files"
        assert IQN in root.run(["cat", CONFFILE]).stdout
        root.run(["dpkg", "--purge", "bootsrv"])
        root.run(["test", "!", "-e", CONFFILE])
        root.run(["test", "-e", "/var/lib/bootsrv/disks/ws01.img"])


def test_man_page_renders(unpacked):
    page = unpacked / "usr/share/man/man1/bootsrv.1.gz"
    shown = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin", "MANWIDTH": "80", "LANG": "C.UTF-8"}, timeout=60)
    assert shown.returncode == 0 and shown.stderr == "", shown.stderr
    for text in ("bootsrv - boot-and-backup appliance", "bootsrv snapshot export", "--incremental-from",
                 "/etc/bootsrv/bootsrv.toml"):
        assert text in shown.stdout, text


def test_bash_completion_completes_commands_and_choices(unpacked):
    script = unpacked / "usr/share/bash-completion/completions/bootsrv"
    probe = f"""
set -e
source {script}
complete -p bootsrv
show() {{ COMP_WORDS=("$@"); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); COMPREPLY=(); _bootsrv; echo "${{COMPREPLY[*]}}"; }}
show bootsrv sna
show bootsrv snapshot ex
show bootsrv -h disk create --type ""
show bootsrv snapshot export --config /etc/x.toml --incr
"""
    lines = run(["bash", "--norc", "--noprofile", "-c", probe]).stdout.splitlines()
    assert lines == ["complete -o default -F _bootsrv bootsrv", "snapshot", "export", "dynamic fixed",
                     "--incremental-from"], lines
