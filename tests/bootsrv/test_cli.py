"""Every CLI mistake is one line on stderr naming what is wrong; exit 2 for usage, 1 for failures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.support.cli import run_cli



def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, timeout=60)


@pytest.mark.parametrize("args,names", [
    (["serve"], "--config"),
    (["nosuch"], "nosuch"),
    (["snapshot"], "ACTION"),
    (["snapshot", "create"], "disk"),
    (["snapshot", "delete", "abc"], "'abc'"),
    (["snapshot", "mount", "1"], "--iscsi --local"),
    (["snapshot", "export", "1", "/tmp/x", "--format", "qcow2"], "qcow2"),
    (["snapshot", "list", "--bogus"], "--bogus"),
    (["disk", "create", "x.vhd", "--type", "huge"], "huge"),
    (["schedule", "run"], "name"),
])
def test_usage_mistakes_are_one_line(args, names):
    result = cli(*args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0] and "Traceback" not in result.stderr, result.stderr


def test_admin_commands_without_a_server_say_so_in_one_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[server]\nstate_dir = "state"\n')
    for args in (["snapshot", "list"], ["status"], ["snapshot", "create", "x"], ["schedule", "run", "nightly"]):
        result = cli(*args, "-c", str(config), cwd=tmp_path)
        assert result.returncode == 1, result
        assert result.stderr.count("\n") == 1 and "not running" in result.stderr, result.stderr
    missing = cli("status", "-c", str(tmp_path / "nope.toml"))
    assert missing.returncode == 1 and "nope.toml" in missing.stderr and missing.stderr.count("\n") == 1


def test_verify_of_a_file_that_is_not_an_export(tmp_path):
    junk = tmp_path / "junk.vhd"
    junk.write_bytes(b"x" * 4096)
    result = cli("snapshot", "verify", str(junk))
    assert result.returncode == 1 and "manifest" in result.stdout and "Traceback" not in result.stderr
