"""libiscsi's conformance suite (iscsi-test-cu) run test by test: each test's outcome, so two
LUs' runs can be compared one test at a time.

`iscsi-test-cu` with no `-t` runs its families ALL, SCSI, iSCSI and LINUX, which are the same
230 tests two or three times over (ALL is SCSI plus iSCSI; LINUX is a part of ALL); `-t ALL`
runs each once. Its exit code says little (0 on some versions even with failures), and a test
that finds a feature missing prints "[SKIPPED]" and counts as passed, so the verbose CUnit
listing ("Suite: X" / "Test: Y ...passed|FAILED") is read instead.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.support.tools import run

INITIATORS = ("iqn.2026-11.test:init1", "iqn.2026-11.test:init2")  # the suite's PR tests need two
E2E = Path(__file__).resolve().parents[1] / "e2e"
# Tests an RBD LU answers differently from a raw one, one "Suite.Test" a line, each with its reason
RBD_DIFFERENCES = E2E / "iscsi_test_cu_rbd_differences.txt"

_SUITE = re.compile(r"^Suite: (\S+)", re.MULTILINE)
_TEST = re.compile(r"^  Test: (\S+) \.\.\.", re.MULTILINE)
_SUMMARY = re.compile(r"^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class SuiteRun:
    outcomes: dict[str, str]  # "Suite.Test" -> "passed" | "skipped" | "failed"
    total: int
    ran: int
    failed: int
    text: str

    def named(self, outcome: str) -> set[str]:
        return {test for test, seen in self.outcomes.items() if seen == outcome}

    def tail(self, chars: int = 4000) -> str:
        return self.text[-chars:]


def parse(text: str) -> SuiteRun:
    """The verbose (-v) listing of one run, test by test."""
    marks = sorted([(m.start(), "suite", m.group(1)) for m in _SUITE.finditer(text)]
                   + [(m.start(), "test", m.group(1)) for m in _TEST.finditer(text)])
    summary = _SUMMARY.search(text)
    if summary is None:
        raise AssertionError(f"iscsi-test-cu printed no Run Summary:\n{text[-4000:]}")
    ends = [pos for pos, _, _ in marks[1:]] + [summary.start()]
    outcomes: dict[str, str] = {}
    suite = "?"
    for (pos, kind, name), end in zip(marks, ends):
        if kind == "suite":
            suite = name
            continue
        block = text[pos:end]
        # CUnit ends a test with "passed" or "FAILED" (after whatever the test printed)
        if re.search(r"(\.\.\.|^)FAILED$", block, re.MULTILINE):
            outcomes[f"{suite}.{name}"] = "failed"
        elif "[SKIPPED]" in block:
            outcomes[f"{suite}.{name}"] = "skipped"
        else:
            outcomes[f"{suite}.{name}"] = "passed"
    total, ran, _, failed = map(int, summary.groups())
    return SuiteRun(outcomes, total, ran, failed, text)


def run_suite(url: str, tests: str = "ALL", *, timeout: float = 1200) -> SuiteRun:
    """Every test of `tests` (a family, or FAMILY.SUITE[.TEST], comma-separated) on the LU at `url`."""
    out = run(["iscsi-test-cu", "--dataloss", "-v", "-t", tests, f"--initiator-name={INITIATORS[0]}",
               f"--initiator-name-2={INITIATORS[1]}", url], timeout=timeout,
              check=False).stdout  # non-zero on any failure, accepted ones included
    return parse(out)


def run_suites(urls: dict[str, str], tests: str = "ALL") -> dict[str, SuiteRun]:
    """The same tests on several LUs at once (each LU its own server, so that the suite's
    target resets on one do not reach the others); the runs wait on different things."""
    with ThreadPoolExecutor(len(urls)) as pool:
        futures = {name: pool.submit(run_suite, url, tests) for name, url in urls.items()}
        return {name: future.result() for name, future in futures.items()}


def listed(path: Path) -> set[str]:
    """The "Suite.Test" lines of a list file (comments and blank lines skipped)."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {line for line in lines if line}


def differences(reference: SuiteRun, other: SuiteRun) -> dict[str, tuple[str, str]]:
    """Tests whose outcome on `other` is worse than on `reference` (a skip where it ran, a
    failure where it passed, or absent): test -> (reference's outcome, other's)."""
    rank = {"passed": 0, "skipped": 1, "failed": 2, "absent": 3}
    found = {}
    for test, seen in reference.outcomes.items():
        theirs = other.outcomes.get(test, "absent")
        if rank[theirs] > rank[seen]:
            found[test] = (seen, theirs)
    return found
