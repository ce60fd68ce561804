"""A raw-wire iSCSI initiator over a plain socket: it sends exactly the bytes a test
asks for (corrupt digests included) and reads replies one PDU at a time, as
`target.iscsi.pdu.Pdu`s whose named fields (opcode, status, response, itt, ...)
the tests read instead of byte offsets.

Headers come from target.iscsi.wire; the framing and CRC32C digests here are
computed independently (google_crc32c), so a digest bug in the target cannot
cancel out against the same bug on this side.
"""

from __future__ import annotations

import socket
import struct

import google_crc32c

from target.iscsi import wire
from target.iscsi.pdu import Opcode, Pdu
from tests.support.scratch import SCRATCH_IQN

RAW_INITIATOR = "iqn.2026-11.test:raw"


def digest(data: bytes) -> bytes:
    return struct.pack("<I", google_crc32c.value(data))  # iSCSI sends CRC32C little-endian


def pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def request_bhs(opcode: int, flags: int, itt: int, ttt: int, cmdsn: int) -> bytearray:
    """A request header of any opcode (immediate if 0x40 is set in `opcode`)."""
    return wire.request(opcode, flags, itt, ttt, cmdsn)


class RawInitiator:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.digests = False
        self.cmdsn = 1

    def send(self, bhs: bytearray, data: bytes = b"", *, corrupt_header: bool = False,
             corrupt_data: bool = False) -> None:
        bhs[5:8] = len(data).to_bytes(3, "big")
        wire_bytes = bytes(bhs)
        if self.digests:
            hd = bytearray(digest(bytes(bhs)))
            if corrupt_header:
                hd[0] ^= 0xFF
            wire_bytes += bytes(hd)
        if data:
            wire_bytes += pad(data)
            if self.digests:
                dd = bytearray(digest(pad(data)))
                if corrupt_data:
                    dd[0] ^= 0xFF
                wire_bytes += bytes(dd)
        self.sock.sendall(wire_bytes)

    def recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by target")
            buf += chunk
        return buf

    def recv(self) -> Pdu:
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
        return Pdu(bhs, data=data)

    def expect_good(self) -> Pdu:
        """The next reply: a SCSI Response with status GOOD."""
        reply = self.recv()
        assert reply.opcode == Opcode.SCSI_RESPONSE and reply.status == 0, reply.bhs.hex()
        return reply

    def login(self, *, digests: bool, target: str = SCRATCH_IQN, initiator: str = RAW_INITIATOR) -> bytes:
        keys = [f"InitiatorName={initiator}", f"TargetName={target}", "SessionType=Normal",
                "AuthMethod=None"]
        keys += [f"HeaderDigest={'CRC32C' if digests else 'None'}",
                 f"DataDigest={'CRC32C' if digests else 'None'}", "ImmediateData=Yes", "InitialR2T=Yes",
                 "MaxRecvDataSegmentLength=65536"]
        # Straight from security to full feature phase.
        self.send(wire.login_request(csg=0, nsg=3, itt=1, cmdsn=self.cmdsn),
                  b"".join(k.encode() + b"\0" for k in keys))
        reply = self.recv()
        text = bytes(reply.data)
        assert reply.opcode == Opcode.LOGIN_RESPONSE and reply.login_status == 0, (reply.bhs.hex(), text)
        assert reply.final and reply.flags & 0x03 == 3, "target did not move to full feature phase"
        self.digests = digests
        # A new I_T nexus has POWER ON OCCURRED pending: clear it with TEST UNIT READY, as initiators do.
        self.send(wire.scsi_command(bytes(6), itt=0x7777, cmdsn=self.cmdsn, immediate=True, attr=0))
        response = self.recv()
        assert response.status == 0x02 and response.data[2 + 12] == 0x29, response.bhs.hex()
        return text

    def nop(self, itt: int, ping: bytes = b"") -> bytes:
        self.send(wire.nop_out(itt=itt, cmdsn=self.cmdsn), ping)
        self.cmdsn += 1
        reply = self.recv()
        assert reply.opcode == Opcode.NOP_IN and reply.itt == itt
        return bytes(reply.data)

    def write10(self, itt: int, lba: int, data: bytes, *, corrupt_data: bool = False, fua: bool = False) -> None:
        cdb = struct.pack(">BBIBHB", 0x2A, 0x08 if fua else 0, lba, 0, len(data) // 512, 0)
        self.send(wire.scsi_command(cdb, itt=itt, cmdsn=self.cmdsn, write=True, length=len(data)), data,
                  corrupt_data=corrupt_data)
        self.cmdsn += 1

    def read10(self, itt: int, lba: int, length: int) -> bytes:
        """READ (10) of `length` bytes: the Data-In segments joined, once status GOOD came."""
        cdb = struct.pack(">BBIBHB", 0x28, 0, lba, 0, length // 512, 0)
        self.send(wire.scsi_command(cdb, itt=itt, cmdsn=self.cmdsn, read=True, length=length))
        self.cmdsn += 1
        data = b""
        while True:
            reply = self.recv()
            if reply.opcode != Opcode.DATA_IN:
                assert reply.opcode == Opcode.SCSI_RESPONSE and reply.status == 0, reply.bhs.hex()
                return data
            data += reply.data
            if reply.flags & 0x01:  # the S bit: the status came with the last Data-In
                assert reply.status == 0, reply.bhs.hex()
                return data

    def synchronize_cache(self, itt: int) -> None:
        """SYNCHRONIZE CACHE (10) of the whole LUN; returns once it succeeded."""
        self.send(wire.scsi_command(struct.pack(">BBIBHB", 0x35, 0, 0, 0, 0, 0), itt=itt, cmdsn=self.cmdsn))
        self.cmdsn += 1
        self.expect_good()

    def close(self) -> None:
        self.sock.close()
