"""Valid inputs to mutate, and the mutator: the fuzz soak (bench/soak.py) feeds them
to the sans-IO protocol cores, the live abuse test (tests/support/abuse.py) sends them
to a running server over TCP."""

from __future__ import annotations

import random
import struct

from target.iscsi import wire
from target.iscsi.pdu import RESERVED_TAG
from target.iscsi.protocol import TmfFunction

TARGET = "iqn.2026-11.lan.bootsrv:soak"


def mutate(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if not data:
            data += rng.randbytes(rng.randint(1, 64))
        elif choice < 0.4:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif choice < 0.55:
            del data[rng.randrange(len(data)):]
        elif choice < 0.7:
            at = rng.randrange(len(data))
            data[at:at] = rng.randbytes(rng.randint(1, 32))
        elif choice < 0.8:
            at = rng.randrange(len(data))
            data[at:at] = data[at:at + rng.randint(1, 64)] * rng.randint(1, 4)
        elif choice < 0.9 and len(data) >= 8:  # a length or count field set to an edge value
            at = rng.randrange(len(data) - 3)
            data[at:at + 4] = struct.pack(">I", rng.choice((0, 1, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF, 1 << 24)))
        else:
            data += rng.randbytes(rng.randint(1, 16))
    return bytes(data)


def login_pdu(target: str = TARGET, initiator: str = "iqn.2026-11.test:soak") -> bytes:
    keys = [f"InitiatorName={initiator}", f"TargetName={target}", "AuthMethod=None",
            "MaxRecvDataSegmentLength=8192", "ImmediateData=Yes", "InitialR2T=No", "MaxBurstLength=65536",
            "FirstBurstLength=16384"]
    return wire.frame(wire.login_request(csg=0, nsg=3), b"".join(k.encode() + b"\0" for k in keys))


def iscsi_seeds() -> list[bytes]:
    read10 = struct.pack(">BBIBHB", 0x28, 0, 8, 0, 16, 0)
    write10 = struct.pack(">BBIBHB", 0x2A, 0, 16, 0, 40, 0)
    frame = wire.frame
    return [
        frame(wire.scsi_command(read10, itt=2, cmdsn=2, read=True, length=8192)),
        frame(wire.scsi_command(write10, itt=3, cmdsn=3, write=True, length=20480), b"\x5a" * 4096),
        frame(wire.data_out(itt=3, ttt=RESERVED_TAG, offset=4096), b"\x5b" * 8192),
        frame(wire.nop_out(itt=4, cmdsn=4), b"ping"),
        frame(wire.tmf_request(TmfFunction.ABORT_TASK, itt=5, cmdsn=5, referenced_itt=3)),
        frame(wire.text_request(itt=6, cmdsn=6), b"SendTargets=All\0"),
        frame(wire.scsi_command(bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]), itt=7, cmdsn=7)),  # REPORT LUNS
        frame(wire.scsi_command(bytes([0x12, 0, 0, 0, 36, 0]), itt=8, cmdsn=8, read=True, length=36)),  # INQUIRY
    ]


LOGOUT = wire.frame(wire.logout_request(itt=9, cmdsn=9))  # sent now and then: it ends the connection
