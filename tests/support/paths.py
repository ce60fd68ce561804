"""Where this checkout is, computed once for every test and helper.

Invariant: REPO is the checkout the tests were imported from, so a subprocess run with
checkout_env() imports the same code as the test that started it (not an installed copy).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"  # what tests build once and share between runs (the golden Linux image)


def checkout_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout on PYTHONPATH (plus `extra`)."""
    return dict(os.environ, PYTHONPATH=str(REPO), **extra)
