#!/usr/bin/env python3
"""The long part of the faults-and-abuse suite, with one summary table at the end.

1. Fuzzing the protocol cores: valid inputs (a login, SCSI reads and writes with
   data, Data-Out, NOP, task management, SendTargets; DHCP DISCOVER/REQUEST from
   PXE and iPXE; DNS queries; TFTP file names) mutated (bytes flipped, cut,
   repeated, lengths changed) and fed to the same sans-IO code the servers run,
   over a real disk file. A failure is any exception other than the codec's own
   "malformed" error; the disk outside the fuzzed area must stay unchanged.
2. The same mutated iSCSI streams over TCP to a running server, then slow
   (slowloris) logins from four addresses, while a client of another disk does
   I/O throughout (tests/support/abuse.py): it must see no error.
3. Power cuts (tests/support/powerloss.py, root and /dev/fuse): a standalone and a
   client's differencing disk, each through half of the trials.
4. Load: 256 sessions of mixed I/O (tests/e2e/test_load.py): no failure, no
   dropped session, descriptors and memory flat.

    python bench/soak.py [--inputs 250000] [--live-inputs 50000] [--power-cuts 100]
                         [--load-minutes 10] [--seed 1] [--quick]

--quick shrinks every part (a smoke run of the soak itself, about 3 minutes).
The fast part of the suite runs in `make test`, which prints the same table.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import random
import struct
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import common  # noqa: F401  (first: it puts this checkout on sys.path)

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
from tests.support.fuzzseeds import LOGOUT, TARGET, iscsi_seeds, login_pdu, mutate  # noqa: E402
from tests.support.faults_summary import table  # noqa: E402

MAC = "52:54:00:12:34:56"
FUZZED_BLOCKS = 2048  # the fuzzer's writes are aimed at the first 1 MiB; the rest must not change


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
        policy.take_effects()  # the appliance's part; here only the decisions are fuzzed
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


def fuzz_cores(inputs: int, seed: int) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bootsrv-soak-") as tmp:
        for name, fuzzer in FUZZERS:
            work = Path(tmp) / name.split()[0].lower()
            work.mkdir()
            started = time.monotonic()
            done, failures = fuzzer(inputs, random.Random(seed), work)
            rows.append(Row(f"fuzz {name}", inputs=done, failures=failures, seconds=time.monotonic() - started))
    return rows


def abuse_live(inputs: int, seed: int) -> list[Row]:
    from tests.support.abuse import Bystander, abuse_config, live_fuzz, slow_logins  # noqa: PLC0415
    from tests.support.load import server_pid  # noqa: PLC0415
    from tests.support.server import start_server  # noqa: PLC0415
    rows = []
    with tempfile.TemporaryDirectory(prefix="bootsrv-soak-") as tmp:
        server = start_server(Path(tmp), abuse_config(login_timeout="3s"))
        try:
            bystander = Bystander(server.port)
            bystander.start()
            started = time.monotonic()
            sent = live_fuzz(server.port, inputs, seed)
            alive = server.proc.poll() is None
            rows.append(Row("fuzz iSCSI over TCP", inputs=sent, seconds=time.monotonic() - started,
                            failures=([] if alive else ["the server died"])
                            + ["traceback in the server log"] * ("Traceback" in server.log_text())))
            started = time.monotonic()
            slow = slow_logins(server.port, server_pid(server.port), [f"127.0.0.{n}" for n in range(3, 7)],
                               per_address=68, seconds=120)
            failures = []
            if slow.closed_by_server != slow.opened:
                failures.append(f"{slow.opened - slow.closed_by_server} slow logins outlived login_timeout")
            if slow.rss_mib[1] - slow.rss_mib[0] > 32:
                failures.append(f"server RSS grew {slow.rss_mib[0]:.0f} -> {slow.rss_mib[1]:.0f} MiB")
            rows.append(Row("slow logins (4 addresses)", trials=1, inputs=slow.opened, failures=failures,
                            seconds=time.monotonic() - started,
                            note=f"RSS {slow.rss_mib[0]:.0f} -> {slow.rss_mib[1]:.0f} MiB at the peak"))
            bystander.finish()
            rows.append(Row("bystander client I/O", inputs=bystander.commands, failures=bystander.errors[:5]))
        finally:
            if server.stop() != 0:
                rows.append(Row("server exit", failures=["the server did not exit cleanly"]))
    return rows


def power_cuts(trials: int, seed: int) -> list[Row]:
    from tests.support.powerloss import run_trials  # noqa: PLC0415
    rows = []
    for kind, seeds in (("standalone", range(seed, seed + trials // 2)),
                        ("client", range(seed, seed + trials - trials // 2))):
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="bootsrv-soak-") as tmp:
            try:
                tally = run_trials(kind, Path(tmp), seeds, progress=True)
                failures: list[str] = []
            except AssertionError as exc:
                tally, failures = None, [f"{kind}: {exc}"]
        rows.append(Row(f"power cuts, {kind} disk", trials=tally.trials if tally else 0,
                        inputs=tally.commands if tally else 0, failures=failures,
                        seconds=time.monotonic() - started,
                        note=(f"{tally.pages_lost} pages lost, {tally.pages_kept} kept; "
                              f"{tally.snapshots_created} snapshots taken, {tally.snapshots_deleted} deleted, "
                              f"{tally.snapshot_ops_cut} creates or deletes cut by the power"
                              if tally else "")))
    return rows


def load(minutes: float) -> list[Row]:
    from tests.support.load import SESSIONS, SLOTS, mixed_load  # noqa: PLC0415
    from tests.support.scratch import scratch_config  # noqa: PLC0415
    from tests.support.server import start_server  # noqa: PLC0415
    with tempfile.TemporaryDirectory(prefix="bootsrv-soak-") as tmp:
        server = start_server(Path(tmp), scratch_config(f"{SESSIONS * SLOTS * 4}KiB"))
        started = time.monotonic()
        try:
            result = mixed_load(server.port, SESSIONS, minutes * 60)
        finally:
            code = server.stop()
    failures = list(result.failures[:5])
    if result.slowest_session == 0:
        failures.append("a session made no progress")
    if result.descriptors[0] != result.descriptors[1]:
        failures.append(f"descriptors {result.descriptors[0]} -> {result.descriptors[1]}")
    if result.rss_mib[1] - result.rss_mib[0] > 16:
        failures.append(f"RSS {result.rss_mib[0]:.0f} -> {result.rss_mib[1]:.0f} MiB")
    if code != 0:
        failures.append(f"the server exited {code}")
    return [Row(f"load, {SESSIONS} sessions", trials=1, inputs=result.commands, failures=failures,
                seconds=time.monotonic() - started,
                note=f"RSS {result.rss_mib[0]:.0f} -> {result.rss_mib[1]:.0f} MiB, descriptors "
                     f"{result.descriptors[0]} -> {result.descriptors[1]}")]


@dataclass
class Row:
    part: str
    trials: int = 0
    inputs: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    note: str = ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=250_000, help="inputs per protocol core (4 protocols)")
    parser.add_argument("--live-inputs", type=int, default=50_000, help="mutated iSCSI streams over TCP")
    parser.add_argument("--power-cuts", type=int, default=100, help="power-cut trials (half per disk kind)")
    parser.add_argument("--load-minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a few minutes: every part, small")
    args = parser.parse_args()
    if args.quick:
        args.inputs, args.live_inputs, args.power_cuts, args.load_minutes = 20_000, 3000, 6, 1
    if os.geteuid() != 0:
        print("the power cuts need root (a FUSE mount): run as root, or: make soak", file=sys.stderr)
        return 2
    logging.disable(logging.CRITICAL)  # refusals are logged by design; a million of them say nothing
    started = time.monotonic()
    rows: list[Row] = []
    for step, run in (("fuzzing the protocol cores", lambda: fuzz_cores(args.inputs, args.seed)),
                      ("abuse over TCP", lambda: abuse_live(args.live_inputs, args.seed)),
                      ("power cuts", lambda: power_cuts(args.power_cuts, args.seed)),
                      ("load", lambda: load(args.load_minutes))):
        print(f"-- {step}", flush=True)
        rows += run()
    print()
    for line in table(((row.part, 1, row.trials, row.inputs, len(row.failures)) for row in rows), count="runs"):
        print(line)
    print(f"({(time.monotonic() - started) / 60:.0f} minutes)")
    for row in rows:
        if row.note:
            print(f"{row.part}: {row.note}")
    findings = [finding for row in rows for finding in row.failures]
    for finding in findings[:5]:
        print("\n" + finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
