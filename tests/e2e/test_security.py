"""Who may reach what: an initiator name is only a label anyone can type, so with
CHAP set a guessed name gets nothing; secrets never leave the configuration file
(not in the log, not in `status`); the admin socket is its owner's alone."""

from __future__ import annotations

import json
import stat
import urllib.request

import pytest

from tests.support.cli import run_cli
from tests.support.ports import free_port
from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import run

pytestmark = pytest.mark.e2e
CLIENT_A = "iqn.2026-11.test:client-a"
SECRETS = ("alice-secret-123", "target-secret-456", "web-token-0123456789abcdef")
CHAP = f'initiators = ["{CLIENT_A}"]\nchap = {{ user = "alice", secret = "{SECRETS[0]}" }}\n' \
       f'mutual_chap = {{ user = "target", secret = "{SECRETS[1]}" }}'


def test_a_guessed_initiator_name_without_the_chap_secret_gets_nothing(run_server):
    server = run_server(scratch_config(extra_target=CHAP))
    spoofed = run(["iscsi-inq", "-i", CLIENT_A, server.url(SCRATCH_IQN)], check=False)  # B types A's name
    assert spoofed.returncode != 0
    guessed = run(["iscsi-inq", "-i", CLIENT_A, server.url(SCRATCH_IQN, user="alice", secret="alice-secret-12")],
                  check=False)
    assert guessed.returncode != 0
    right = server.url(SCRATCH_IQN, user="alice", secret=SECRETS[0], target_user="target",
                       target_password=SECRETS[1])
    assert "Vendor:BOOTSRV" in run(["iscsi-inq", "-i", CLIENT_A, right]).stdout


def test_secrets_never_reach_the_log_or_status(run_server, tmp_path):
    web = free_port()
    server = run_server(scratch_config(extra_target=CHAP) + f'\n[web]\nlisten = "127.0.0.1:{web}"\n'
                        f'token = "{SECRETS[2]}"\n')
    right = server.url(SCRATCH_IQN, user="alice", secret=SECRETS[0], target_user="target",
                       target_password=SECRETS[1])
    run(["iscsi-inq", "-i", CLIENT_A, right])
    run(["iscsi-inq", "-i", CLIENT_A, server.url(SCRATCH_IQN, user="alice", secret="wrong-" + SECRETS[0])],
        check=False)
    request = urllib.request.Request(f"http://127.0.0.1:{web}/api/overview",
                                     headers={"Authorization": f"Bearer {SECRETS[2]}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        api = reply.read().decode()
    status = run_cli("status", "-c", server.config, cwd=tmp_path, check=True).stdout
    status_json = run_cli("status", "--json", "-c", server.config, cwd=tmp_path, check=True).stdout
    checked = run_cli("check-config", server.config, cwd=tmp_path, check=True)
    json.loads(status_json)
    for where, text in (("log", server.log_text()), ("status", status), ("status --json", status_json),
                        ("API", api), ("check-config", checked.stdout + checked.stderr)):
        for secret in SECRETS:
            assert secret not in text, f"{secret} appears in the {where}"
    assert CLIENT_A in server.log_text()  # the log does name who logged in


def test_the_admin_socket_is_its_owners_alone(run_server, tmp_path):
    run_server(scratch_config())
    mode = (tmp_path / "state" / "admin.sock").stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600, oct(mode)
