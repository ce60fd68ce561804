"""[snapshots] and [[snapshots.schedule]]: schedules parse, and each mistake names its key."""

from pathlib import Path

import pytest

from bootsrv.config import load_config
from snapshots.retention import Keep
from tests.support.config_sample import GOOD, refusal, write


SNAPSHOTS = """
[snapshots]
export_dir = "/srv/backup/bootsrv"
[[snapshots.schedule]]
disks = ["*"]
cron = "0 2 * * *"
export = "incremental"
keep = { last = 3, daily = 7, weekly = 4, monthly = 6 }
"""


def test_snapshot_schedules_parse(tmp_path):
    config = load_config(write(tmp_path, GOOD + SNAPSHOTS))
    (schedule,) = config.snapshots.schedules
    assert config.snapshots.export_dir == Path("/srv/backup/bootsrv")
    assert (schedule.name, schedule.cron, schedule.disks, schedule.export) == ("schedule1", "0 2 * * *", ("*",),
                                                                               "incremental")
    assert schedule.keep == Keep(3, 7, 4, 6) and schedule.grace == 6 * 3600


@pytest.mark.parametrize("change,key,expected", [
    (('cron = "0 2 * * *"', 'cron = "0 26 * * *"'), "snapshots.schedule[0].cron", "five cron fields"),
    (('disks = ["*"]', 'disks = ["nosuch"]'), "snapshots.schedule[0].disks", "disk or client names"),
    (('export = "incremental"', 'export = "sometimes"'), "snapshots.schedule[0].export", '"none", "full"'),
    (('last = 3', 'last = -1'), "snapshots.schedule[0].keep.last", "0 or more"),
    (('last = 3', 'lastt = 3'), "snapshots.schedule[0].keep.lastt", "unknown key"),
    (('export_dir = "/srv/backup/bootsrv"', ''), "snapshots.schedule[0].export", "export_dir"),
    (("[snapshots]", '[web]\nlisten = "127.0.0.1:8080"\n[snapshots]'), "web.token", "at least 16"),
    (("[snapshots]", '[web]\nlisten = "8080"\ntoken = "0123456789abcdef"\n[snapshots]'), "web.listen", "host:port"),
])
def test_snapshot_errors_name_the_key(tmp_path, change, key, expected):
    path = write(tmp_path, (GOOD + SNAPSHOTS).replace(*change))
    message = refusal(path)
    assert key in message and expected in message, message
