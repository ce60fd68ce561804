"""The whole iscsi-test-cu suite on a 1 GiB scratch LUN: a regression guard.

Any failure outside iscsi_test_cu_accepted_failures.txt fails the test, and so
does a server that crashed or logged a traceback. (iscsi-test-cu exits 0 even
on some versions and 1 on others when tests fail: its summary and failure lines are parsed.)
"""

from __future__ import annotations

import re

import pytest

from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import accepted_failures, run

pytestmark = pytest.mark.e2e
def test_full_suite_has_no_unexpected_failures(run_server):
    server = run_server(scratch_config("1GiB"))
    # -t ALL: each test once (with no -t the suite runs its families ALL, SCSI, iSCSI and LINUX,
    # the same tests two or three times over).
    out = run(["iscsi-test-cu", "--dataloss", "-n", "-t", "ALL", "--initiator-name=iqn.2026-11.test:init1",
               "--initiator-name-2=iqn.2026-11.test:init2", server.url(SCRATCH_IQN)], timeout=900,
              check=False).stdout  # exits non-zero on any failure, accepted ones included
    summary = re.search(r"^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.MULTILINE)
    assert summary, out[-3000:]
    total, ran, passed, failed = map(int, summary.groups())
    assert total >= 200 and ran == total, out[-3000:]
    failures = {f"{suite}.{test}" for suite, test in re.findall(r"Suite (\S+), Test (\S+) had failures", out)}
    unexpected = failures - accepted_failures()
    assert not unexpected, f"unexpected iscsi-test-cu failures: {sorted(unexpected)}\n{out[-5000:]}"
    print(f"iscsi-test-cu: {passed} of {total} passed; accepted failures: {sorted(failures)}")
