"""The target as libiscsi's tools see it: discovery, inquiry, capacity, CHAP, ACLs, digests."""

from __future__ import annotations

import re
import socket
import time

import pytest

from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import run

pytestmark = pytest.mark.e2e
SIZE = 300 << 20


def test_iscsi_ls_lists_target_luns_and_size(run_server):
    server = run_server(scratch_config("300MiB"))
    out = run(["iscsi-ls", "-s", server.url("", lun=None)]).stdout
    assert f"Target:{SCRATCH_IQN} Portal:127.0.0.1:{server.port},1" in out
    assert re.search(r"Lun:0\s+Type:DIRECT_ACCESS \(Size:\d+M\)", out), out
    capacity = run(["iscsi-readcapacity16", server.url(SCRATCH_IQN)]).stdout
    assert f"Total size:{SIZE}" in capacity
    assert f"RETURNED LOGICAL BLOCK ADDRESS:{SIZE // 512 - 1}" in capacity
    assert "LOGICAL BLOCK LENGTH IN BYTES:512" in capacity


def test_iscsi_inq_standard_and_vpd_pages(run_server):
    server = run_server(scratch_config())
    url = server.url(SCRATCH_IQN)
    standard = run(["iscsi-inq", url]).stdout
    assert "Peripheral Device Type:DIRECT_ACCESS" in standard
    assert "Vendor:BOOTSRV" in standard and "CmdQue:1" in standard
    supported = run(["iscsi-inq", "-e", "1", "-c", "0", url]).stdout
    for page in ("0x00", "0x80", "0x83", "0xb0", "0xb1", "0xb2"):
        assert page in supported.lower() or page[2:] in supported.lower(), supported
    serial = run(["iscsi-inq", "-e", "1", "-c", "128", url]).stdout
    assert re.search(r"Unit Serial Number:\[[0-9a-f]{16}\]", serial), serial
    ident = run(["iscsi-inq", "-e", "1", "-c", "131", url]).stdout
    assert "Designator Type:(3) NAA" in ident, ident
    assert f"Designator:[{SCRATCH_IQN}]" in ident and "RELATIVE_TARGET_PORT" in ident
    limits = run(["iscsi-inq", "-e", "1", "-c", "176", url]).stdout
    assert "maximum transfer length:131072" in limits, limits
    assert "Medium Rotation Rate:1" in run(["iscsi-inq", "-e", "1", "-c", "177", url]).stdout
    provisioning = run(["iscsi-inq", "-e", "1", "-c", "178", url]).stdout
    for line in ("lbpu:1", "lbpws:1", "lbpws10:1", "lbprz:1", "provisioning type:2"):  # thin, UNMAP-able
        assert line in provisioning, provisioning


def test_identifiers_are_stable_across_restarts(run_server, tmp_path):
    first = run_server(scratch_config())
    before = run(["iscsi-inq", "-e", "1", "-c", "131", first.url(SCRATCH_IQN)]).stdout
    assert first.stop() == 0
    second = run_server(scratch_config())
    assert run(["iscsi-inq", "-e", "1", "-c", "131", second.url(SCRATCH_IQN)]).stdout == before


def test_unknown_target_and_lun_are_refused(run_server):
    server = run_server(scratch_config())
    bad = run(["iscsi-inq", server.url("iqn.2026-11.lan.bootsrv:nosuch")], check=False)
    assert bad.returncode != 0
    missing_lun = run(["iscsi-readcapacity16", server.url(SCRATCH_IQN, lun=5)], check=False)
    assert missing_lun.returncode != 0


CHAP = 'chap = { user = "alice", secret = "alice-secret-123" }'
MUTUAL = 'mutual_chap = { user = "target", secret = "target-secret-456" }'


def test_chap_wrong_secret_refused_right_secret_works(run_server):
    server = run_server(scratch_config(extra_target=CHAP))
    assert run(["iscsi-inq", server.url(SCRATCH_IQN)], check=False).returncode != 0  # no CHAP at all
    wrong = run(["iscsi-inq", server.url(SCRATCH_IQN, user="alice", secret="not-the-secret")], check=False)
    assert wrong.returncode != 0
    wrong_user = run(["iscsi-inq", server.url(SCRATCH_IQN, user="bob", secret="alice-secret-123")], check=False)
    assert wrong_user.returncode != 0
    right = run(["iscsi-inq", server.url(SCRATCH_IQN, user="alice", secret="alice-secret-123")])
    assert "Vendor:BOOTSRV" in right.stdout
    assert "AUTH_FAILED" in server.log_text() or "refused (0x0201)" in server.log_text()


def test_chap_guessing_is_throttled_per_address(run_server):
    server = run_server(scratch_config(extra_target=CHAP))
    for n in range(10):
        guess = server.url(SCRATCH_IQN, user="alice", secret=f"guess-number-{n:04d}")
        assert run(["iscsi-inq", guess], check=False).returncode != 0
    # Even the right secret is refused from this address for a while.
    right = run(["iscsi-inq", server.url(SCRATCH_IQN, user="alice", secret="alice-secret-123")], check=False)
    assert right.returncode != 0
    assert "failed logins in 60 s: no logins from there for 60 s" in server.log_text()
    assert "guess-number" not in server.log_text() and "alice-secret" not in server.log_text()


def test_half_open_login_flood_is_capped_and_clients_still_log_in(run_server):
    server = run_server(scratch_config())
    flood = []
    try:
        for _ in range(80):  # connect and say nothing, from another loopback address
            sock = socket.socket()
            sock.bind(("127.0.0.2", 0))
            sock.settimeout(10)
            sock.connect(("127.0.0.1", server.port))
            flood.append(sock)
        for sock in flood:
            sock.setblocking(False)
        closed: set[int] = set()
        deadline = time.monotonic() + 20  # the refusals come at once; this only bounds a slow machine
        while len(closed) < 80 - 64 and time.monotonic() < deadline:
            for n, sock in enumerate(flood):
                try:
                    if n not in closed and sock.recv(1) == b"":
                        closed.add(n)
                except BlockingIOError:
                    pass  # still waiting for its login (until login_timeout)
            time.sleep(0.05)
        assert len(closed) == 80 - 64  # 64 half-open logins per address at most
        assert "connections from there have not logged in yet" in server.log_text()
        assert "Vendor:BOOTSRV" in run(["iscsi-inq", server.url(SCRATCH_IQN)]).stdout  # another address
    finally:
        for sock in flood:
            sock.close()


def test_mutual_chap_checks_both_directions(run_server):
    server = run_server(scratch_config(extra_target=f"{CHAP}\n{MUTUAL}"))
    good = server.url(SCRATCH_IQN, user="alice", secret="alice-secret-123",
                      target_user="target", target_password="target-secret-456")
    assert "Vendor:BOOTSRV" in run(["iscsi-inq", good]).stdout
    # The initiator checks us: a wrong target secret on its side makes it refuse our answer.
    wrong_target = server.url(SCRATCH_IQN, user="alice", secret="alice-secret-123",
                              target_user="target", target_password="wrong-target-pw")
    assert run(["iscsi-inq", wrong_target], check=False).returncode != 0
    # We check the initiator in the same exchange.
    wrong_initiator = server.url(SCRATCH_IQN, user="alice", secret="bad-initiator-pw",
                                 target_user="target", target_password="target-secret-456")
    assert run(["iscsi-inq", wrong_initiator], check=False).returncode != 0


def test_initiator_acl(run_server):
    allowed = "iqn.2026-11.test:allowed"
    server = run_server(scratch_config(extra_target=f'initiators = ["{allowed}"]'))
    refused = run(["iscsi-inq", "-i", "iqn.2026-11.test:stranger", server.url(SCRATCH_IQN)], check=False)
    assert refused.returncode != 0
    assert "0x0202" in server.log_text()
    assert "Vendor:BOOTSRV" in run(["iscsi-inq", "-i", allowed, server.url(SCRATCH_IQN)]).stdout
    # Discovery shows an initiator only the targets it may log in to.
    assert SCRATCH_IQN not in run(["iscsi-ls", "-i", "iqn.2026-11.test:stranger", server.url("", lun=None)]).stdout
    assert SCRATCH_IQN in run(["iscsi-ls", "-i", allowed, server.url("", lun=None)]).stdout


def test_crc32c_digests_negotiated_and_used(run_server):
    server = run_server(scratch_config())
    url = server.url(SCRATCH_IQN, header_digest="crc32c")
    assert "Vendor:BOOTSRV" in run(["iscsi-inq", url]).stdout
    assert "digests CRC32C/" in server.log_text()
