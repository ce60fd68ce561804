"""Command counters for monitoring: plain integers bumped on the event loop as
commands complete, read by a metrics exporter when it is scraped. No metrics
library here: the target stays a library, and the hot path stays cheap."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

# Seconds, from 100 µs (a cached 4 KiB read) to 5 s (a stalled disk).
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_READS = frozenset((0x08, 0x28, 0xA8, 0x88))
_WRITES = frozenset((0x0A, 0x2A, 0xAA, 0x8A, 0x2E, 0xAE, 0x8E, 0x41, 0x93, 0x89))


@dataclass(slots=True)
class CommandStats:
    commands: dict[str, int] = field(default_factory=lambda: {"read": 0, "write": 0, "other": 0})
    failed: int = 0  # completed with a status other than GOOD
    bytes_read: int = 0  # data-in sent to initiators
    bytes_written: int = 0  # data-out received from initiators
    latency_counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def record(self, opcode: int, data_in: int, data_out: int, status: int, seconds: float) -> None:
        kind = "read" if opcode in _READS else "write" if opcode in _WRITES else "other"
        self.commands[kind] += 1
        if status:
            self.failed += 1
        self.bytes_read += data_in
        self.bytes_written += data_out
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
