"""What long work on disks (a copy, an export, a verify) reports its progress to: how many
bytes it will go through, and each step as it goes. bootsrv's `Progress` is one; this module
keeps `target/` and `snapshots/` free of it (they import nothing of bootsrv).

Either call may raise to stop the work (the server stopping under a running task): work
that reports to a meter leaves nothing half-done under a final name when it does."""

from __future__ import annotations

from typing import Protocol


class Meter(Protocol):
    def set_total(self, total: int | None) -> None: ...
    def advance(self, count: int) -> None: ...


class NoMeter:
    """Nobody is watching: both calls do nothing."""

    def set_total(self, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


NO_METER = NoMeter()
