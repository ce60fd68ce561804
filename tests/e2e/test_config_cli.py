"""Issue 7: the wizard-like CLI edits the configuration file (keeping the
admin's comments), a running server applies the change at once, and it is
still there after a restart. Mistakes are one line and leave the file alone."""

from __future__ import annotations

import json

import pytest

from bootsrv.config import DEFAULT_BASE_IQN
from tests.support.scratch import SCRATCH_IQN
from tests.support.server import start_server
from tests.support.snapshots import bootsrv_cli, client_config, make_golden
from tests.support.tools import run

pytestmark = pytest.mark.e2e
COMMENTED = "# the lab's boot server — edited by hand and by the CLI\n"


def cli(server, *args: str, check: bool = True):
    return bootsrv_cli(server.workdir, *args, "-c", str(server.config), check=check)


def targets(server, initiator: str) -> str:
    return run(["iscsi-ls", "-s", "-i", initiator, f"iscsi://127.0.0.1:{server.port}"]).stdout


def test_cli_edits_apply_live_and_survive_a_restart(tmp_path):
    make_golden(tmp_path, "32MiB")
    text = COMMENTED + client_config("""
[[disk]]
name = "scratch"
path = "disks/scratch.img"
size = "16MiB"   # a small scratch disk
""")
    server = start_server(tmp_path, text)
    try:
        out = cli(server, "client", "add", "ws02", "--mac", "52:54:00:00:00:02", "--image", "golden").stdout
        assert "applied: client ws02 added" in out, out
        ws02 = f"{DEFAULT_BASE_IQN}:initiator.ws02"
        assert f"{DEFAULT_BASE_IQN}:ws02" in targets(server, ws02)
        rows = json.loads(cli(server, "client", "list", "--json").stdout)
        assert [(r["name"], r["state"]) for r in rows] == [("pc1", "offline"), ("ws02", "offline")]
        out = cli(server, "target", "create", SCRATCH_IQN, "--disk", "scratch", "--initiator", "iqn.2026-11.test:a").stdout
        assert f"applied: target {SCRATCH_IQN} added" in out
        assert SCRATCH_IQN in targets(server, "iqn.2026-11.test:a")
        assert SCRATCH_IQN not in targets(server, "iqn.2026-11.test:b")
        cli(server, "target", "allow", SCRATCH_IQN, "iqn.2026-11.test:b")
        assert SCRATCH_IQN in targets(server, "iqn.2026-11.test:b")
        cli(server, "client", "remove", "pc1")
        assert f"{DEFAULT_BASE_IQN}:pc1" not in targets(server, f"{DEFAULT_BASE_IQN}:initiator.pc1")
        # Mistakes: one line, exit 1, the file as it was.
        before = server.config.read_text()
        for args in (["target", "assign", SCRATCH_IQN, "nosuchdisk"], ["client", "add", "bad name", "--mac", "x",
                                                                           "--image", "golden"],
                     ["client", "remove", "nobody"], ["target", "allow", SCRATCH_IQN, "iqn.2026-11.test:b"]):
            result = cli(server, *args, check=False)
            assert result.returncode == 1 and result.stderr.count("\n") == 1, (args, result.stderr)
        assert server.config.read_text() == before
        assert server.config.read_text().startswith(COMMENTED) and "# a small scratch disk" in before
        out = cli(server, "schedule", "add", "nightly", "--cron", "0 2 * * *", "--export", "incremental",
                  "--keep-last", "3").stdout
        assert "applied: snapshot schedules and settings" in out, out
        (row,) = json.loads(cli(server, "schedule", "list", "--json").stdout)
        assert (row["name"], row["keep"], row["last_run"]) == ("nightly", "last=3", "-") and row["next_run"] != "-"
        assert "keep = {last = 3}" in server.config.read_text()
    finally:
        assert server.stop() == 0
    # With no server running the CLI edits the file itself.
    offline = bootsrv_cli(tmp_path, "client", "add", "ws09", "--mac", "52:54:00:00:00:09", "--image", "golden",
                          "-c", str(server.config)).stdout
    assert "not running" in offline
    again = start_server(tmp_path, server.config.read_text().replace(f":{server.port}\"", ':@PORT@"'))
    try:
        listing = targets(again, "iqn.2026-11.test:b")
        assert SCRATCH_IQN in listing and "Lun:0" in listing
        assert f"{DEFAULT_BASE_IQN}:ws02" in targets(again, f"{DEFAULT_BASE_IQN}:initiator.ws02")
        assert f"{DEFAULT_BASE_IQN}:ws09" in targets(again, f"{DEFAULT_BASE_IQN}:initiator.ws09")
        assert "schedule nightly" in cli(again, "status").stdout
        assert "Traceback" not in again.log_text()
    finally:
        assert again.stop() == 0
