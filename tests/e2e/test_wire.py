"""Bytes on the wire that no well-behaved initiator sends: corrupted digests,
garbage, PDUs before login. The server must detect them, answer as RFC 7143
says, and keep serving everyone else (checked with iscsi-inq afterwards).

The headers come from target.iscsi.wire (through tests/support/initiator.py);
the digests and framing of RawInitiator are computed independently of it.
"""

from __future__ import annotations

import socket
import time

import pytest

from target.iscsi import wire
from target.iscsi.pdu import RESERVED_TAG, Opcode, Pdu, RejectReason
from tests.support.initiator import RawInitiator
from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import run

pytestmark = pytest.mark.e2e


def _wait_closed(sock: socket.socket) -> bool:
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def _server_still_serves(server) -> None:
    assert "Vendor:BOOTSRV" in run(["iscsi-inq", server.url(SCRATCH_IQN)]).stdout


def test_digests_verified_both_ways_and_corrupt_data_digest_rejected(run_server):
    server = run_server(scratch_config("16MiB"))
    client = RawInitiator(server.port)
    text = client.login(digests=True)
    assert b"HeaderDigest=CRC32C" in text and b"DataDigest=CRC32C" in text
    assert client.nop(7, b"ping-data") == b"ping-data"  # digests checked inside recv()

    client.write10(8, 0, b"\x11" * 4096)  # good digests: lands on disk
    client.expect_good()

    client.write10(9, 8, b"\x22" * 4096, corrupt_data=True)
    reject = client.recv()
    assert reject.opcode == Opcode.REJECT and reject.response == RejectReason.DATA_DIGEST_ERROR
    assert Pdu(bytes(reject.data[:48])).itt == 9  # the rejected header comes back
    response = client.recv()
    assert response.opcode == Opcode.SCSI_RESPONSE and response.status == 0x02  # CHECK CONDITION
    sense = response.data
    assert sense[2 + 2] & 0x0F == 0x0B and sense[2 + 12:2 + 14] == b"\x47\x05"  # ABORTED COMMAND, CRC error
    client.close()

    disk = (server.workdir / "disks" / "scratch.img").read_bytes()
    assert disk[:4096] == b"\x11" * 4096
    assert disk[4096:8192] == bytes(4096), "data with a bad digest must not be written"
    _server_still_serves(server)


def test_corrupt_header_digest_drops_the_connection(run_server):
    server = run_server(scratch_config("16MiB"))
    client = RawInitiator(server.port)
    client.login(digests=True)
    client.send(wire.nop_out(itt=5, cmdsn=client.cmdsn), corrupt_header=True)
    with pytest.raises(ConnectionError):
        client.recv()
    assert "header digest mismatch" in server.log_text()
    _server_still_serves(server)


@pytest.mark.parametrize("garbage", [
    b"\xff" * 48,  # an opcode nobody knows, before login
    b"\x01" + b"\0" * 47,  # a SCSI command before login
    b"\x43\x87" + b"\0" * 2 + b"\0\xff\xff\xff" + b"\0" * 40,  # login claiming a 16 MiB data segment
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\0" * 30,
])
def test_garbage_before_login_is_dropped(run_server, garbage):
    server = run_server(scratch_config("16MiB"))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(garbage)
    assert _wait_closed(sock)  # a login reject may come first; then the target closes
    sock.close()
    _server_still_serves(server)


def test_unknown_opcode_after_login_gets_reject(run_server):
    server = run_server(scratch_config("16MiB"))
    client = RawInitiator(server.port)
    client.login(digests=False)
    # A vendor-specific initiator opcode; one we do not know takes no CmdSN slot.
    client.send(wire.request(0x1C, 0x80, 3, 0, client.cmdsn))
    reject = client.recv()
    assert reject.opcode == Opcode.REJECT and reject.response == RejectReason.COMMAND_NOT_SUPPORTED
    assert Pdu(bytes(reject.data[:48])).opcode == 0x1C
    assert client.nop(4, b"still here") == b"still here"
    client.close()


def test_session_reinstatement_closes_the_old_connection(run_server):
    server = run_server(scratch_config("16MiB"))
    old = RawInitiator(server.port)
    old.login(digests=False)
    new = RawInitiator(server.port)  # same initiator name and ISID, TSIH 0: the OS after iPXE
    new.login(digests=False)
    assert _wait_closed(old.sock)
    assert new.nop(11, b"new session works") == b"new session works"
    assert "reinstated" in server.log_text()
    new.close()


KEEPALIVE = """
nop_interval = "1s"
nop_timeout = "2s"
login_timeout = "2s"
"""


def test_target_pings_silent_initiators_and_drops_dead_ones(run_server):
    server = run_server(scratch_config("16MiB").replace('[iscsi]\n', '[iscsi]\n' + KEEPALIVE))
    client = RawInitiator(server.port)
    client.login(digests=False)
    ping = client.recv()  # arrives after a second of silence
    assert ping.opcode == Opcode.NOP_IN and ping.itt == RESERVED_TAG
    ttt = ping.ttt
    assert ttt != RESERVED_TAG
    client.send(wire.nop_out(itt=RESERVED_TAG, cmdsn=client.cmdsn, ttt=ttt, immediate=True))  # the answer
    assert client.nop(12, b"alive") == b"alive"
    # Now go silent and ignore the pings: the target gives up on us.
    client.sock.settimeout(30)
    assert _wait_closed(client.sock)
    assert "no answer to NOP-In" in server.log_text()


def test_half_open_login_is_timed_out(run_server):
    server = run_server(scratch_config("16MiB").replace('[iscsi]\n', '[iscsi]\n' + KEEPALIVE))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(b"\x43")  # one byte of a login, then nothing
    assert _wait_closed(sock)
    assert "login did not finish in time" in server.log_text()
    _server_still_serves(server)


def test_initiator_that_never_answers_pings_keeps_its_session(run_server):
    """iPXE ignores NOP-In pings; dropping it would only break a booting client."""
    server = run_server(scratch_config("16MiB").replace('[iscsi]\n', '[iscsi]\n' + KEEPALIVE))
    client = RawInitiator(server.port)
    client.login(digests=False)
    ping = client.recv()
    assert ping.opcode == Opcode.NOP_IN  # ignored, as iPXE does
    deadline = time.monotonic() + 30
    while "does not answer NOP-In" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.1)
    assert client.nop(13, b"still served") == b"still served"
    client.close()
