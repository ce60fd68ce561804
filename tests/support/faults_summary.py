"""The faults-and-abuse suite inside `make test`: which tests make up each part,
what they counted, and the summary table printed at the end of the run.

A test belongs to a part by its node id (a file, or a file and a test name
prefix); tests add their own counts with `record(part, trials=, inputs=)`.
bench/soak.py prints the same table for the long runs.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable

PARTS: dict[str, tuple[str, ...]] = {
    "power cuts": ("tests/e2e/test_power_loss.py",),
    "kill -9": ("tests/e2e/test_crash.py", "tests/e2e/test_snapshot_crash.py",
                "tests/bootsrv/test_disk_cli.py::test_convert_killed", "tests/bootsrv/test_disk_cli.py::test_extend_killed",
                "tests/snapshots/test_engine.py::test_interrupted", "tests/snapshots/test_engine.py::test_a_snapshot_recorded",
                "tests/snapshots/test_engine.py::test_a_snapshot_that_recovery"),
    "protocol fuzzing": ("tests/target/iscsi/test_pdu.py::test_reader", "tests/target/iscsi/test_protocol.py::test_random",
                         "tests/bootsrv/dhcp/test_dhcp.py::test_garbage", "tests/bootsrv/dhcp/test_dhcp.py::test_random",
                         "tests/bootsrv/test_tftp_dns.py::test_resolve_never", "tests/bootsrv/test_tftp_dns.py::test_dns_garbage",
                         "tests/e2e/test_wire.py::test_garbage", "tests/e2e/test_wire.py::test_unknown_opcode",
                         "tests/e2e/test_dashboard.py::test_malformed", "tests/e2e/test_abuse.py::test_mutated"),
    "floods, slow logins": ("tests/e2e/test_wire.py::test_half_open", "tests/e2e/test_libiscsi.py::test_half_open",
                            "tests/target/iscsi/test_throttle.py", "tests/e2e/test_abuse.py::test_slow"),
    "load": ("tests/e2e/test_load.py",),
    "security": ("tests/e2e/test_security.py", "tests/e2e/test_libiscsi.py::test_chap",
                 "tests/e2e/test_libiscsi.py::test_mutual_chap", "tests/e2e/test_libiscsi.py::test_initiator_acl",
                 "tests/target/iscsi/test_login.py", "tests/bootsrv/test_tftp_dns.py::test_resolve_stays",
                 "tests/e2e/test_netboot.py::test_tftp_serves", "tests/e2e/test_dashboard.py::test_api_needs_the_token",
                 "tests/bootsrv/test_config.py::test_secrets"),
    "disk full": ("tests/target/stores/test_disk_full.py", "tests/snapshots/test_engine.py::test_a_snapshot_is_refused"),
}

_counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def record(part: str, **counts: int) -> None:
    """Add to a part's counts (trials, inputs, sessions ...)."""
    assert part in PARTS, part
    for name, value in counts.items():
        _counts[part][name] += value


def part_of(nodeid: str) -> str | None:
    for part, prefixes in PARTS.items():
        for prefix in prefixes:
            whole_file = "::" not in prefix
            if nodeid.startswith(prefix + "::") if whole_file else nodeid.startswith(prefix):
                return part
    return None


def table(rows: Iterable[tuple[str, int, int, int, int]], count: str = "tests") -> list[str]:
    """rows: (part, tests or runs, trials, inputs, failures)."""
    rows = list(rows)
    width = max([len("all"), *(len(row[0]) for row in rows)])
    lines = [f"{'part':<{width}} {count:>6} {'trials':>8} {'inputs':>10} {'failures':>9}"]
    total = [0, 0, 0, 0]
    for part, tests, trials, inputs, failures in rows:
        lines.append(f"{part:<{width}} {tests:>6} {trials:>8} {inputs:>10} {failures:>9}")
        total = [a + b for a, b in zip(total, (tests, trials, inputs, failures))]
    lines.append(f"{'all':<{width}} {total[0]:>6} {total[1]:>8} {total[2]:>10} {total[3]:>9}")
    return lines


class FaultsReport:
    """pytest plugin: tally outcomes per part and print the table at the end."""

    def __init__(self) -> None:
        self.passed: dict[str, int] = defaultdict(int)
        self.failed: dict[str, int] = defaultdict(int)

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001 (pytest's TestReport)
        part = part_of(report.nodeid)
        if part is None:
            return
        if report.failed:
            self.failed[part] += 1
        elif report.passed and report.when == "call":
            self.passed[part] += 1

    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001
        parts = [p for p in PARTS if self.passed[p] or self.failed[p]]
        if not parts:
            return
        terminalreporter.write_sep("=", "faults and abuse suite")
        rows = [(p, self.passed[p] + self.failed[p], _counts[p]["trials"], _counts[p]["inputs"], self.failed[p])
                for p in parts]
        for line in table(rows):
            terminalreporter.write_line(line)
