"""Crash points for the crash trials: with BOOTSRV_CRASH_AT=NAME in the
environment, the process kills itself (SIGKILL, as a power cut would stop it)
when it reaches the point NAME. Unset, a point costs one string comparison."""

from __future__ import annotations

import os
import signal

_TARGET = os.environ.get("BOOTSRV_CRASH_AT", "")


def crash_point(name: str) -> None:
    if _TARGET and name == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
