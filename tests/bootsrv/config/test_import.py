"""Importing the configuration model stays light: no APScheduler, no store (VHD) stack.

A fresh interpreter, because this test process has long since imported both.
"""

import json
import os
import subprocess
import sys

from tests.support.config_sample import GOOD, write
from tests.support.paths import REPO

HEAVY = ("apscheduler", "target.stores")


def modules_after(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)
    return json.loads(result.stdout.splitlines()[-1])


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def test_importing_bootsrv_config_imports_no_scheduler_and_no_stores():
    assert heavy(modules_after("import bootsrv.config")) == []


def test_loading_a_file_without_schedules_stays_light_too(tmp_path):
    path = write(tmp_path, GOOD)
    assert heavy(modules_after(f"from bootsrv.config import load_config\nload_config({str(path)!r})")) == []


def test_a_schedule_brings_in_the_cron_parser(tmp_path):
    path = write(tmp_path, GOOD + '[[snapshots.schedule]]\ncron = "0 2 * * *"\n')
    assert "apscheduler" in modules_after(f"from bootsrv.config import load_config\nload_config({str(path)!r})")
