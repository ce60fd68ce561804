"""CPU cost of the sans-IO iSCSI core: SCSI READ and WRITE through TargetConnection, no sockets.

    python bench/protocol_micro.py [--rounds N] [--seconds S]

One logged-in connection (digests off, ImmediateData=Yes, InitialR2T=No, as
Linux and qemu negotiate with us) over a raw disk on tmpfs, so the disk costs
memory copies only. Per round it pipelines batches of 32 commands: 4 KiB READ (10)
and WRITE (10) with immediate data, and a few 1 MiB ones (a WRITE takes its first
burst as immediate data, the rest through R2T and Data-Out). Each task runs the
way the asyncio shell runs it (device.execute, zero-copy on), and the output is
taken and dropped. It prints commands per CPU second (process time, so other
work on a shared machine disturbs it less) for each kind, the best of the rounds:
compare branches on the same machine, alternating runs.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from target.iscsi import wire  # noqa: E402
from target.iscsi.pdu import Opcode  # noqa: E402
from target.iscsi.protocol import TargetConnection  # noqa: E402
from target.iscsi.session import SessionRegistry  # noqa: E402
from target.iscsi.targets import TargetDirectory, TargetSpec  # noqa: E402
from target.scsi.device import ScsiDevice  # noqa: E402
from target.scsi.lu import LogicalUnit  # noqa: E402
from target.stores.raw import RawStore  # noqa: E402

TARGET = "iqn.2026-11.lan.bootsrv:micro"
DISK = 64 << 20
SMALL = 4096
LARGE = 1 << 20
BATCH = 32  # commands in flight, under the queue depth
BURST = 262144  # FirstBurstLength and the target's MaxRecvDataSegmentLength
_R2T = int(Opcode.R2T)
_R2T_FIELDS = struct.Struct(">I16xII")  # TTT at 20, buffer offset at 40, desired length at 44


def rw10(opcode: int, lba: int, length: int) -> bytes:
    return struct.pack(">BBIBHB", opcode, 0, lba, 0, length // 512, 0)


class Bench:
    def __init__(self, store: RawStore) -> None:
        directory = TargetDirectory()
        directory.add(TargetSpec(TARGET, ScsiDevice([LogicalUnit("micro", store, target_name=TARGET)])))
        self.conn = conn = TargetConnection(directory, SessionRegistry(), queue_depth=128)
        keys = ["InitiatorName=iqn.2026-11.test:micro", f"TargetName={TARGET}", "AuthMethod=None",
                "MaxRecvDataSegmentLength=262144", "MaxBurstLength=1048576", f"FirstBurstLength={BURST}",
                "ImmediateData=Yes", "InitialR2T=No"]
        conn.receive_data(wire.frame(wire.login_request(csg=0, nsg=3), b"".join(k.encode() + b"\0" for k in keys)))
        conn.data_to_send()
        assert conn.logged_in
        self.device = conn.target.device
        self.cmdsn = conn.expected_cmdsn
        self.itt = 0x100
        self.run(self.conn.receive_data(wire.frame(wire.scsi_command(bytes(6), itt=1, cmdsn=self.cmdsn,
                                                                     immediate=True))))
        self.conn.data_to_send()  # the POWER ON unit attention, cleared

    def command(self, cdb: bytes, *, read: bool, length: int, data: bytes = b"") -> bytes:
        self.itt += 1
        pdu = wire.frame(wire.scsi_command(cdb, itt=self.itt, cmdsn=self.cmdsn, read=read, write=not read,
                                           length=length), data)
        self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        return pdu

    def run(self, tasks) -> None:
        conn, device = self.conn, self.device
        for task in tasks:
            conn.complete(task, device.execute(task.lun, task.cdb, task.data, conn.nexus, True))

    def small_batch(self, opcode: int, block: bytes, base_lba: int) -> None:
        read = opcode == 0x28
        stream = b"".join(self.command(rw10(opcode, base_lba + 8 * i, SMALL), read=read, length=SMALL,
                                       data=b"" if read else block) for i in range(BATCH))
        self.run(self.conn.receive_data(stream))
        self.conn.data_to_send()

    def large_read(self, lba: int) -> None:
        self.run(self.conn.receive_data(self.command(rw10(0x28, lba, LARGE), read=True, length=LARGE)))
        self.conn.data_to_send()

    def large_write(self, lba: int, data: bytes) -> None:
        conn = self.conn
        tasks = conn.receive_data(self.command(rw10(0x2A, lba, LARGE), read=False, length=LARGE, data=data[:BURST]))
        itt = self.itt
        while not tasks:  # answer the R2Ts with Data-Out PDUs of at most BURST bytes
            stream = []
            for buf in conn.data_to_send():
                if len(buf) == 48 and buf[0] == _R2T:
                    ttt, offset, length = _R2T_FIELDS.unpack_from(buf, 20)
                    for n, at in enumerate(range(offset, offset + length, BURST)):
                        end = min(at + BURST, offset + length)
                        stream.append(wire.frame(wire.data_out(itt=itt, ttt=ttt, offset=at, datasn=n,
                                                               final=end == offset + length), data[at:end]))
            assert stream, "the write neither ran nor asked for data"
            tasks = conn.receive_data(b"".join(stream))
        self.run(tasks)
        conn.data_to_send()


def one_round(bench: Bench, seconds: float) -> dict[str, float]:
    block, big = b"\xa5" * SMALL, bytes(range(256)) * (LARGE // 256)
    rates: dict[str, float] = {}
    kinds = [("4k read", lambda i: bench.small_batch(0x28, block, (i % 64) * 8 * BATCH), BATCH),
             ("4k write", lambda i: bench.small_batch(0x2A, block, (i % 64) * 8 * BATCH), BATCH),
             ("1m read", lambda i: bench.large_read((i % 32) * 2048), 1),
             ("1m write", lambda i: bench.large_write((i % 32) * 2048, big), 1)]
    for name, step, per_step in kinds:
        done, started = 0, time.process_time()
        while (elapsed := time.process_time() - started) < seconds:
            step(done)
            done += 1
        rates[name] = done * per_step / elapsed
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="CPU seconds per kind of command and round")
    args = parser.parse_args()
    scratch = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=scratch) as work:
        store = RawStore.create(Path(work) / "disk.img", DISK)
        bench = Bench(store)
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, rate in one_round(bench, args.seconds).items():
                best[name] = max(best.get(name, 0.0), rate)
        store.close()
    for name, rate in best.items():
        print(f"{name:>9}: {rate:10.0f} commands/s")


if __name__ == "__main__":
    main()
