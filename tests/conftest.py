"""Every test run ends with the faults-and-abuse suite's table (tests/support/faults_summary.py)."""

from hypothesis import settings

from tests.support.faults_summary import FaultsReport

# Hypothesis fails an example that runs longer than 200 ms by default: a timed
# assertion, which a busy CI machine trips. Tests here assert outcomes only.
settings.register_profile("bootsrv", deadline=None)
settings.load_profile("bootsrv")


def pytest_configure(config):
    config.pluginmanager.register(FaultsReport(), "bootsrv-faults-report")
