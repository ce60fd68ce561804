#!/usr/bin/env python3
"""Fuzz soak: mutated iSCSI, DHCP, DNS and TFTP inputs against the protocol cores.

Valid inputs (a login, SCSI reads and writes with data, Data-Out, NOP, task
management, SendTargets; DHCP DISCOVER/REQUEST from PXE and iPXE; DNS queries;
TFTP file names) are mutated (bytes flipped, cut, repeated, lengths changed) and
fed to the same sans-IO code the servers run, over a real disk file. A failure
is any exception other than the codec's own "malformed" error; after every
iSCSI batch the disk outside the fuzzed area must be unchanged.

    python bench/soak.py [--inputs 250000] [--seed 1]     (per protocol; 4 protocols)

The fast part of this (hypothesis, a few hundred inputs each) runs in make test.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import random
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bootsrv.clients import BootClient  # noqa: E402
from bootsrv.config import ClientConfig, DhcpConfig  # noqa: E402
from bootsrv.dhcp import packet as dhcp  # noqa: E402
from bootsrv.dhcp.leases import LeaseStore  # noqa: E402
from bootsrv.dhcp.policy import DhcpPolicy  # noqa: E402
from bootsrv.dns import DnsAnswers  # noqa: E402
from bootsrv.tftp import resolve  # noqa: E402
from target.iscsi.protocol import TargetConnection  # noqa: E402
from target.iscsi.session import SessionRegistry  # noqa: E402
from target.iscsi.targets import TargetDirectory, TargetSpec  # noqa: E402
from target.scsi.device import ScsiDevice  # noqa: E402
from target.scsi.lu import LogicalUnit  # noqa: E402
from target.scsi.registry import HANDLERS, Access  # noqa: E402
from target.stores.raw import RawStore  # noqa: E402

TARGET = "iqn.2026-11.lan.bootsrv:soak"
MAC = "52:54:00:12:34:56"
FUZZED_BLOCKS = 2048  # the fuzzer's writes are aimed at the first 1 MiB; the rest must not change


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


# ---- iSCSI ------------------------------------------------------------------------

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


def login_pdu() -> bytes:
    keys = ["InitiatorName=iqn.2026-11.test:soak", f"TargetName={TARGET}", "AuthMethod=None",
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


def fuzz_iscsi(count: int, rng: random.Random, work: Path) -> tuple[int, list[str]]:
    store = RawStore.create(work / "disk.img", 4 << 20)
    store.write(FUZZED_BLOCKS * 512, bytes(range(256)) * (((4 << 20) - FUZZED_BLOCKS * 512) // 256))
    untouched = hashlib.sha256(store.read(FUZZED_BLOCKS * 512, (4 << 20) - FUZZED_BLOCKS * 512)).digest()
    directory = TargetDirectory()
    directory.add(TargetSpec(TARGET, ScsiDevice([LogicalUnit("soak", store, target_name=TARGET)])))
    registry, seeds, failures, done = SessionRegistry(), iscsi_seeds(), [], 0
    conn: TargetConnection | None = None
    connections = executed = 0
    while done < count:
        if conn is None or conn.closing or rng.random() < 0.001:
            if conn is not None:
                conn.connection_lost()
            conn = TargetConnection(directory, registry, queue_depth=32)
            connections += 1
            # a mutated login now and then; usually a good one, so the full-feature phase gets fuzzed
            conn.receive_data(mutate(rng, login_pdu()) if rng.random() < 0.2 else login_pdu())
            conn.data_to_send()
        pdus = []
        for k in range(rng.randint(1, 8)):
            pdu = bytearray(LOGOUT if rng.random() < 0.01 else rng.choice(seeds))
            if pdu[0] & 0x3F != 0x05:  # in CmdSN order, or the commands would only ever wait
                struct.pack_into(">I", pdu, 24, (conn.expected_cmdsn + k) & 0xFFFFFFFF)
            pdus.append(mutate(rng, bytes(pdu)) if rng.random() < 0.3 else bytes(pdu))  # most stay valid: deep states
        stream = b"".join(pdus)
        try:
            at = 0
            while at < len(stream):  # arbitrary chunking, as TCP delivers
                step = rng.randint(1, len(stream) - at)
                for task in conn.receive_data(stream[at:at + step]):
                    # aim writes at the fuzzed area only: the rest of the disk stands for other clients
                    cdb = task.cdb
                    entry = HANDLERS.get(cdb[0]) if cdb else None
                    if entry is not None and entry.access is Access.WRITE:
                        cdb = struct.pack(">BBIBHB", 0x2A, 0, rng.randrange(FUZZED_BLOCKS - 64), 0, 8, 0)
                    conn.complete(task, conn.target.device.execute(task.lun, cdb, task.data, conn.nexus))
                    executed += 1
                conn.data_to_send()
                at += step
        except Exception:  # noqa: BLE001  (any escape is a finding)
            failures.append(f"iSCSI input {stream.hex()[:400]}:\n{traceback.format_exc()}")
            conn = None
        done += 1
    if hashlib.sha256(store.read(FUZZED_BLOCKS * 512, (4 << 20) - FUZZED_BLOCKS * 512)).digest() != untouched:
        failures.append("iSCSI: the disk changed outside the area the fuzzer's writes were aimed at")
    store.close()
    print(f"iSCSI: {connections} connections, {executed} SCSI commands run", flush=True)
    return done, failures


# ---- DHCP, DNS, TFTP ---------------------------------------------------------------

def dhcp_seeds() -> list[bytes]:
    seeds = []
    for kind in (dhcp.DISCOVER, dhcp.REQUEST, dhcp.INFORM, dhcp.RELEASE):
        for extra in ({}, {dhcp.OPT_USER_CLASS: b"iPXE", dhcp.OPT_CLIENT_ARCH: b"\0\0"},
                      {dhcp.OPT_VENDOR_CLASS: b"PXEClient:Arch:00007:UNDI:003016", dhcp.OPT_CLIENT_ARCH: b"\0\x07"}):
            packet = dhcp.DhcpPacket(op=1, xid=0x1234, chaddr=bytes.fromhex(MAC.replace(":", "")),
                                     options={dhcp.OPT_MESSAGE_TYPE: bytes([kind]), **extra})
            seeds.append(packet.encode())
    return seeds


def one_by_one(name: str, count: int, rng: random.Random, seeds: list[bytes],
               feed: Callable[[bytes], None]) -> tuple[int, list[str]]:
    failures = []
    for _ in range(count):
        data = mutate(rng, rng.choice(seeds))
        try:
            feed(data)
        except Exception:  # noqa: BLE001
            failures.append(f"{name} input {data.hex()[:400]}:\n{traceback.format_exc()}")
    return count, failures


def fuzz_dhcp(count: int, rng: random.Random, work: Path) -> tuple[int, list[str]]:
    client = BootClient(ClientConfig("ws01", MAC, "golden", ip="10.77.0.101"), f"{TARGET}.ws01",
                        "iqn.2026-11.lan.bootsrv:initiator.ws01", work / "ws01.vhd", work / "g.vhd")
    config = DhcpConfig(mode="full", interface="tap0", pool=("10.77.0.100", "10.77.0.200"), router="10.77.0.1",
                        domain="lab", lease_time=3600)
    policy = DhcpPolicy(config, "10.77.0.1", "255.255.255.0",
                        LeaseStore(work / "leases.sqlite", config.pool, {MAC: "10.77.0.101"}), {MAC: client})
    clock = [1000.0]

    def feed(data: bytes) -> None:
        try:
            request = dhcp.DhcpPacket.decode(data)
        except dhcp.PacketError:
            return
        clock[0] += 1
        reply = policy.handle(request, clock[0])
        if reply is not None:
            dhcp.DhcpPacket.decode(reply.packet.encode())

    return one_by_one("DHCP", count, rng, dhcp_seeds(), feed)


def fuzz_dns(count: int, rng: random.Random, work: Path) -> tuple[int, list[str]]:
    from dnslib import DNSRecord  # noqa: PLC0415  (only the soak needs it here)
    answers = DnsAnswers("lab", lambda: {"ws01": "10.77.0.101", "ws02": "10.77.0.102"})
    seeds = [DNSRecord.question(name, kind).pack() for name, kind in
             (("ws01.lab", "A"), ("ws02.lab", "AAAA"), ("101.0.77.10.in-addr.arpa", "PTR"), ("example.org", "A"))]
    return one_by_one("DNS", count, rng, seeds, lambda data: answers.answer(data, forwarding=rng.random() < 0.5))


def fuzz_tftp(count: int, rng: random.Random, work: Path) -> tuple[int, list[str]]:
    root = work / "tftp"
    root.mkdir()
    (root / "undionly.kpxe").write_bytes(b"x")
    (root / "out").symlink_to(work)
    roots = [root]
    seeds = [b"undionly.kpxe", b"../../etc/passwd", b"/etc/shadow", b"out/disk.img", b"ipxe/../undionly.kpxe"]

    def feed(data: bytes) -> None:
        found = resolve(roots, data.decode("latin-1"))
        if found is not None and not found.resolve().is_relative_to(root.resolve()):
            raise AssertionError(f"TFTP resolved {data!r} outside its root: {found}")

    return one_by_one("TFTP", count, rng, seeds, feed)


FUZZERS = [("iSCSI (PDUs, login, full feature)", fuzz_iscsi), ("DHCP (decode + policy)", fuzz_dhcp),
           ("DNS (answers)", fuzz_dns), ("TFTP (file names)", fuzz_tftp)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=250_000, help="inputs per protocol")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # refusals are logged by design; a million of them say nothing
    rows, findings = [], []
    with tempfile.TemporaryDirectory(prefix="bootsrv-soak-") as tmp:
        for name, fuzzer in FUZZERS:
            work = Path(tmp) / name.split()[0].lower()
            work.mkdir()
            started = time.monotonic()
            done, failures = fuzzer(args.inputs, random.Random(args.seed), work)
            rows.append((name, done, len(failures), time.monotonic() - started))
            findings += failures
    print(f"{'fuzz soak':36} {'inputs':>10} {'failures':>9} {'seconds':>8}")
    for name, done, failed, seconds in rows:
        print(f"{name:36} {done:>10} {failed:>9} {seconds:>8.0f}")
    print(f"{'total':36} {sum(r[1] for r in rows):>10} {sum(r[2] for r in rows):>9}")
    for finding in findings[:5]:
        print("\n" + finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
