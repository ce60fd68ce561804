"""What the iSCSI layer knows of a target: its name, who may log in, and the
SCSI device behind it (an opaque dispatcher; this layer knows no SCSI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from target.iscsi.chap import Credentials
from target.scsi.claims import ClaimRefused
from target.scsi.nexus import Nexus


class ScsiDispatcher(Protocol):
    """The command-set layer as the transport sees it."""

    # zero_copy: large reads may answer with file slices (see target.stores.pieces)
    # nowait: raise an exception named WouldBlock rather than wait for the disk
    def execute(self, lun: int, cdb: bytes, data_out: bytes | bytearray | None, nexus: Nexus,
                zero_copy: bool = False, nowait: bool = False) -> Any: ...

    def may_block(self, lun: int, cdb: bytes, zero_copy: bool = False) -> bool: ...

    def nexus_added(self, nexus: Nexus) -> None: ...

    def nexus_removed(self, nexus: Nexus) -> None: ...

    def reset(self, lun: int | None) -> None: ...

    def check_capacity(self) -> None: ...

    # A device whose stores one server at a time may serve (an RBD image): a login claims
    # them (on a worker thread) before its session starts, and gives them back when it ends.
    def claims(self) -> bool: ...

    def claim(self, holder: str) -> ClaimRefused | None: ...

    def release(self, holder: str) -> None: ...


@dataclass(frozen=True, slots=True)
class TargetSpec:
    name: str
    device: ScsiDispatcher
    alias: str = ""
    initiators: frozenset[str] = frozenset()  # empty = any initiator
    chap: Credentials | None = None  # the initiator proves itself with these
    mutual_chap: Credentials | None = None  # and we prove ourselves with these
    portal_group_tag: int = 1

    def allows(self, initiator_name: str) -> bool:
        return not self.initiators or initiator_name.lower() in self.initiators


@dataclass(slots=True)
class TargetDirectory:
    """Targets by (case-insensitive) name, as iSCSI names compare."""

    targets: dict[str, TargetSpec] = field(default_factory=dict)
    # Told (from whichever thread changed it) when a target is added or removed: iSNS.
    on_change: list[Callable[[], None]] = field(default_factory=list)

    def add(self, spec: TargetSpec) -> None:
        self.targets[spec.name.lower()] = spec
        for notify in self.on_change:
            notify()

    def remove(self, name: str) -> None:
        if self.targets.pop(name.lower(), None) is not None:
            for notify in self.on_change:
                notify()

    def find(self, name: str) -> TargetSpec | None:
        return self.targets.get(name.lower())

    def visible_to(self, initiator_name: str) -> list[TargetSpec]:
        return [t for t in self.targets.values() if t.allows(initiator_name)]

    def check_capacity(self) -> None:
        """Every unit whose disk grew tells its sessions (CAPACITY DATA HAS CHANGED). On the
        event loop, which owns the units' state."""
        for spec in list(self.targets.values()):
            spec.device.check_capacity()
