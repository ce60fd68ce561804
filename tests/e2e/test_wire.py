"""Bytes on the wire that no well-behaved initiator sends: corrupted digests,
garbage, PDUs before login. The server must detect them, answer as RFC 7143
says, and keep serving everyone else (checked with iscsi-inq afterwards).

The PDUs here are packed by hand with struct, independently of target/iscsi.
"""

from __future__ import annotations

import socket
import time
import struct

import google_crc32c
import pytest

from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import run

pytestmark = pytest.mark.e2e


def digest(data: bytes) -> bytes:
    return struct.pack("<I", google_crc32c.value(data))  # iSCSI sends CRC32C little-endian


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def request_bhs(opcode: int, flags: int, itt: int, ttt: int, cmdsn: int) -> bytearray:
    bhs = bytearray(48)
    bhs[0], bhs[1] = opcode, flags
    struct.pack_into(">III", bhs, 16, itt, ttt, cmdsn)
    return bhs


RAW_INITIATOR = "iqn.2026-11.test:raw"


class RawInitiator:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.digests = False
        self.cmdsn = 1

    def send(self, bhs: bytearray, data: bytes = b"", *, corrupt_header: bool = False,
             corrupt_data: bool = False) -> None:
        bhs[5:8] = len(data).to_bytes(3, "big")
        wire = bytes(bhs)
        if self.digests:
            hd = bytearray(digest(bytes(bhs)))
            if corrupt_header:
                hd[0] ^= 0xFF
            wire += bytes(hd)
        if data:
            wire += pad(data)
            if self.digests:
                dd = bytearray(digest(pad(data)))
                if corrupt_data:
                    dd[0] ^= 0xFF
                wire += bytes(dd)
        self.sock.sendall(wire)

    def recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by target")
            buf += chunk
        return buf

    def recv(self) -> tuple[bytes, bytes]:
        bhs = self.recv_exact(48)
        if self.digests:
            assert self.recv_exact(4) == digest(bhs), "bad header digest from target"
        length = int.from_bytes(bhs[5:8], "big")
        data = b""
        if length:
            padded = self.recv_exact(length + (-length % 4))
            if self.digests:
                assert self.recv_exact(4) == digest(padded), "bad data digest from target"
            data = padded[:length]
        return bhs, data

    def login(self, *, digests: bool, target: str = SCRATCH_IQN, initiator: str = RAW_INITIATOR) -> bytes:
        keys = [f"InitiatorName={initiator}", f"TargetName={target}", "SessionType=Normal",
                "AuthMethod=None"]
        keys += [f"HeaderDigest={'CRC32C' if digests else 'None'}",
                 f"DataDigest={'CRC32C' if digests else 'None'}", "ImmediateData=Yes", "InitialR2T=Yes",
                 "MaxRecvDataSegmentLength=65536"]
        bhs = bytearray(48)
        bhs[0] = 0x43  # immediate Login Request
        bhs[1] = 0x80 | (0 << 2) | 3  # T, CSG security, NSG full feature
        bhs[8:14] = bytes((0x40, 0, 0, 1, 0, 0))  # ISID (random qualifier format)
        struct.pack_into(">I", bhs, 16, 1)  # ITT
        struct.pack_into(">I", bhs, 24, self.cmdsn)
        self.send(bhs, b"".join(k.encode() + b"\0" for k in keys))
        reply, text = self.recv()
        assert reply[0] & 0x3F == 0x23 and reply[36:38] == b"\0\0", (reply.hex(), text)
        assert reply[1] & 0x80 and reply[1] & 0x03 == 3, "target did not move to full feature phase"
        self.digests = digests
        # A new I_T nexus has POWER ON OCCURRED pending: clear it with TEST UNIT READY, as initiators do.
        self.send(request_bhs(0x41, 0x80, 0x7777, 0, self.cmdsn))
        response, sense = self.recv()
        assert response[3] == 0x02 and sense[2 + 12] == 0x29, (response.hex(), sense.hex())
        return text

    def nop(self, itt: int, ping: bytes = b"") -> bytes:
        self.send(request_bhs(0x00, 0x80, itt, 0xFFFFFFFF, self.cmdsn), ping)
        self.cmdsn += 1
        reply, data = self.recv()
        assert reply[0] & 0x3F == 0x20 and struct.unpack_from(">I", reply, 16)[0] == itt
        return data

    def write10(self, itt: int, lba: int, data: bytes, *, corrupt_data: bool = False, fua: bool = False) -> None:
        bhs = bytearray(48)
        bhs[0], bhs[1] = 0x01, 0x80 | 0x20 | 0x01  # SCSI Command, F, W, SIMPLE
        struct.pack_into(">III", bhs, 16, itt, len(data), self.cmdsn)
        self.cmdsn += 1
        cdb = struct.pack(">BBIBHB", 0x2A, 0x08 if fua else 0, lba, 0, len(data) // 512, 0)
        bhs[32:32 + len(cdb)] = cdb
        self.send(bhs, data, corrupt_data=corrupt_data)

    def synchronize_cache(self, itt: int) -> None:
        """SYNCHRONIZE CACHE (10) of the whole LUN; returns once it succeeded."""
        bhs = request_bhs(0x01, 0x80 | 0x01, itt, 0, self.cmdsn)
        self.cmdsn += 1
        bhs[32:42] = struct.pack(">BBIBHB", 0x35, 0, 0, 0, 0, 0)
        self.send(bhs)
        response, _ = self.recv()
        assert response[0] & 0x3F == 0x21 and response[3] == 0, response.hex()

    def close(self) -> None:
        self.sock.close()


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
    reply, _ = client.recv()
    assert reply[0] & 0x3F == 0x21 and reply[3] == 0x00, reply.hex()

    client.write10(9, 8, b"\x22" * 4096, corrupt_data=True)
    reject, rejected_header = client.recv()
    assert reject[0] & 0x3F == 0x3F and reject[2] == 0x02  # Reject: data digest error
    assert rejected_header[16:20] == struct.pack(">I", 9)
    response, sense = client.recv()
    assert response[0] & 0x3F == 0x21 and response[3] == 0x02  # CHECK CONDITION
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
    client.send(request_bhs(0x00, 0x80, 5, 0xFFFFFFFF, client.cmdsn), corrupt_header=True)
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
    client.send(request_bhs(0x1C, 0x80, 3, 0, client.cmdsn))
    reject, header = client.recv()
    assert reject[0] & 0x3F == 0x3F and reject[2] == 0x05  # command not supported
    assert header[0] & 0x3F == 0x1C
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
    ping, _ = client.recv()  # arrives after a second of silence
    assert ping[0] & 0x3F == 0x20 and ping[16:20] == b"\xff\xff\xff\xff"
    ttt = struct.unpack_from(">I", ping, 20)[0]
    assert ttt != 0xFFFFFFFF
    client.send(request_bhs(0x40, 0x80, 0xFFFFFFFF, ttt, client.cmdsn))  # immediate NOP-Out: the answer
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
    ping, _ = client.recv()
    assert ping[0] & 0x3F == 0x20  # ignored, as iPXE does
    deadline = time.monotonic() + 30
    while "does not answer NOP-In" not in server.log_text():
        assert time.monotonic() < deadline, server.log_text()
        time.sleep(0.1)
    assert client.nop(13, b"still served") == b"still served"
    client.close()
