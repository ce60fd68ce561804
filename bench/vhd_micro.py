#!/usr/bin/env python3
"""VHD block I/O on its own, CPU-bound: ops/s of the store's READ and WRITE paths.

Dynamic and differencing disks in a RAM-backed folder (/dev/shm when there is
one), every block allocated beforehand, so what is timed is the per-block work
(BAT lookup, bitmap runs, pread/pwrite), not allocation or the disk. The
differencing child holds every other 64 KiB of its blocks, so its reads mix
its own sectors with the parent's and its writes set bitmap bits.

    python bench/vhd_micro.py [--seconds 1.0] [--size-mib 256]

Prints one line per case: ops/s and MiB/s. Compare two checkouts by running
the same script in each, alternating.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from target.stores.vhd import open_vhd  # noqa: E402
from target.stores.vhd.create import create_differencing, create_dynamic  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20


def _fill(path: Path, size: int, stride: int, length: int) -> None:
    """Write `length` bytes at every `stride` (allocating each block) and flush."""
    store = open_vhd(path)
    data = os.urandom(length)
    for offset in range(0, size, stride):
        store.write(offset, data[: min(length, size - offset)])
    store.flush()
    store.close()


def _timed(seconds: float, op: Callable[[int], None]) -> float:
    """Calls of `op(i)` per second, for about `seconds`."""
    done, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(64):
            op(done)
            done += 1
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - started)


def _cases(size: int) -> list[tuple[str, int, Callable[[int], int]]]:
    """(name, bytes an op moves, offset of op i)."""
    rng = random.Random(1)
    small = [rng.randrange(size // (4 * KiB)) * 4 * KiB for _ in range(1 << 16)]
    return [
        ("4k-random", 4 * KiB, lambda i: small[i & 0xFFFF]),
        ("1m-sequential", MiB, lambda i: (i * MiB) % size),
    ]


def run(folder: Path, seconds: float, size: int) -> None:
    dynamic, parent, child = folder / "dynamic.vhd", folder / "parent.vhd", folder / "child.vhd"
    create_dynamic(dynamic, size)
    _fill(dynamic, size, 2 * MiB, 2 * MiB)
    create_dynamic(parent, size)
    _fill(parent, size, 2 * MiB, 2 * MiB)
    create_differencing(child, parent)
    _fill(child, size, 128 * KiB, 64 * KiB)
    for disk, path in (("dynamic", dynamic), ("differencing", child)):
        store = open_vhd(path)
        for name, length, offset_of in _cases(size):
            data = os.urandom(length)
            reads = _timed(seconds, lambda i: store.read(offset_of(i), length))
            writes = _timed(seconds, lambda i: store.write(offset_of(i), data))
            for kind, rate in (("read", reads), ("write", writes)):
                print(f"{disk:13} {name:14} {kind:5} {rate:10.0f} ops/s {rate * length / MiB:9.1f} MiB/s",
                      flush=True)
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per case")
    parser.add_argument("--size-mib", type=int, default=256, help="virtual size of each disk")
    args = parser.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="vhd-micro-", dir=base) as folder:
        run(Path(folder), args.seconds, args.size_mib * MiB)


if __name__ == "__main__":
    main()
