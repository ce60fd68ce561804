"""Every test run ends with the faults-and-abuse suite's table (tests/faults_summary.py)."""

from tests.faults_summary import FaultsReport


def pytest_configure(config):
    config.pluginmanager.register(FaultsReport(), "bootsrv-faults-report")
