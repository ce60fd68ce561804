"""Power cuts, not just kill -9: bootsrv's disks and state sit on a file system
that loses whatever was not fsynced (tests/support/powercut.py). The soak runs hundreds
of these trials (bench/soak.py); this runs a few of each kind."""

from __future__ import annotations

import pytest

from tests.support.faults_summary import record
from tests.support.powerloss import run_trials

pytestmark = pytest.mark.e2e
TRIALS = 6


@pytest.mark.parametrize("kind", ["standalone", "client"])
def test_power_cuts_lose_no_flushed_write_and_leave_clean_disks(tmp_path, kind):
    tally = run_trials(kind, tmp_path, range(TRIALS))
    record("power cuts", trials=tally.trials, inputs=tally.commands)
    assert tally.trials == TRIALS
    assert tally.files_checked >= TRIALS
    assert tally.snapshots_created > 0, "no snapshot was taken during the trials"
    print(f"\n{kind}: {tally.trials} cuts, {tally.commands} commands, {tally.pages_lost} pages lost, "
          f"{tally.pages_kept} kept; {tally.snapshots_created} snapshots taken, {tally.snapshots_deleted} deleted, "
          f"{tally.snapshot_ops_cut} creates or deletes cut")
