"""libiscsi's conformance suite (iscsi-test-cu) on the families this target
implements so far; the whole suite is tracked separately. A family must run
every test and fail none."""

from __future__ import annotations

import re

import pytest

from tests.support.scratch import SCRATCH_IQN, scratch_config
from tests.support.tools import run

pytestmark = pytest.mark.e2e

FAMILIES = [
    "SCSI.Inquiry", "SCSI.ModeSense6", "SCSI.Mandatory", "SCSI.NoMedia", "SCSI.TestUnitReady",
    "SCSI.ReadCapacity10", "SCSI.ReadCapacity16",
    "SCSI.Read6", "SCSI.Read10", "SCSI.Read12", "SCSI.Read16",
    "SCSI.Write10", "SCSI.Write12", "SCSI.Write16",
    "iSCSI.iSCSIResiduals", "iSCSI.iSCSITMF", "iSCSI.iSCSIcmdsn",
]


@pytest.fixture(scope="module")
def conformance_server(tmp_path_factory):
    from tests.support.server import start_server
    server = start_server(tmp_path_factory.mktemp("conformance"), scratch_config("1GiB"))
    yield server
    code = server.stop()
    assert code == 0, server.log_text()
    assert "Traceback" not in server.log_text()


@pytest.mark.parametrize("family", FAMILIES)
def test_iscsi_test_cu_family_passes(conformance_server, family):
    out = run(["iscsi-test-cu", "--dataloss", "-n", "-t", family, "--initiator-name=iqn.2026-11.test:init1",
               "--initiator-name-2=iqn.2026-11.test:init2", conformance_server.url(SCRATCH_IQN)],
              timeout=300).stdout
    match = re.search(r"^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.MULTILINE)
    assert match, out
    total, ran, passed, failed, _ = map(int, match.groups())
    assert total > 0 and ran == total and failed == 0 and passed == ran, out


def test_readonly_family_on_a_readonly_lun(run_server):
    server = run_server(scratch_config("64MiB", disk_extra="readonly = true"))
    out = run(["iscsi-test-cu", "--dataloss", "-n", "-t", "SCSI.ReadOnly", server.url(SCRATCH_IQN)],
              timeout=300).stdout
    match = re.search(r"^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", out, re.MULTILINE)
    assert match and match.group(4) == "0" and match.group(1) == match.group(3), out
    # And a real writer is refused while readers are served.
    writer = run(["qemu-img", "bench", "-f", "raw", "-w", "-c", "1", server.url(SCRATCH_IQN)], check=False)
    assert writer.returncode != 0
    run(["qemu-img", "bench", "-f", "raw", "-c", "16", server.url(SCRATCH_IQN)])
