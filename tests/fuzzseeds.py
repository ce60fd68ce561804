"""Valid inputs to mutate, and the mutator: the fuzz soak (bench/soak.py) feeds them
to the sans-IO protocol cores, the live abuse test (tests/e2e/abuse.py) sends them
to a running server over TCP."""

from __future__ import annotations

import random
import struct

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


def _pdu(opcode: int, flags: int, *, itt: int, field20: int = 0, cmdsn: int = 1, data: bytes = b"",
         cdb: bytes = b"", tail: bytes = b"") -> bytes:
    bhs = bytearray(48)
    bhs[0], bhs[1] = opcode, flags
    bhs[5:8] = len(data).to_bytes(3, "big")
    struct.pack_into(">III", bhs, 16, itt, field20, cmdsn)
    bhs[32:32 + len(cdb)] = cdb
    if tail:
        bhs[36:36 + len(tail)] = tail
    return bytes(bhs) + data + bytes(-len(data) % 4)


def login_pdu(target: str = TARGET, initiator: str = "iqn.2026-11.test:soak") -> bytes:
    keys = [f"InitiatorName={initiator}", f"TargetName={target}", "AuthMethod=None",
            "MaxRecvDataSegmentLength=8192", "ImmediateData=Yes", "InitialR2T=No", "MaxBurstLength=65536",
            "FirstBurstLength=16384"]
    data = b"".join(k.encode() + b"\0" for k in keys)
    bhs = bytearray(_pdu(0x43, 0x80 | 3, itt=1, cmdsn=1, data=data)[:48])
    bhs[8:14] = bytes((0x40, 0, 0, 1, 0, 0))
    return bytes(bhs) + data + bytes(-len(data) % 4)


def iscsi_seeds() -> list[bytes]:
    read10 = struct.pack(">BBIBHB", 0x28, 0, 8, 0, 16, 0)
    write10 = struct.pack(">BBIBHB", 0x2A, 0, 16, 0, 40, 0)
    return [
        _pdu(0x01, 0xC1, itt=2, field20=8192, cmdsn=2, cdb=read10),
        _pdu(0x01, 0xA1, itt=3, field20=20480, cmdsn=3, cdb=write10, data=b"\x5a" * 4096),
        _pdu(0x05, 0x80, itt=3, field20=0xFFFFFFFF, data=b"\x5b" * 8192, tail=struct.pack(">II", 0, 4096)),
        _pdu(0x00, 0x80, itt=4, field20=0xFFFFFFFF, cmdsn=4, data=b"ping"),
        _pdu(0x42, 0x81, itt=5, field20=3, cmdsn=5),  # ABORT TASK
        _pdu(0x04, 0x80, itt=6, field20=0xFFFFFFFF, cmdsn=6, data=b"SendTargets=All\0"),
        _pdu(0x01, 0x81, itt=7, cmdsn=7, cdb=bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])),
        _pdu(0x01, 0xC1, itt=8, field20=36, cmdsn=8, cdb=bytes([0x12, 0, 0, 0, 36, 0])),
    ]


LOGOUT = _pdu(0x06, 0x80, itt=9, cmdsn=9)  # sent now and then: it ends the connection
