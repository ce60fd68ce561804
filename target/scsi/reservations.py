"""Reservations: SPC-2 RESERVE/RELEASE and SPC-4 persistent reservations.

Windows failover clustering and VMware rely on persistent reservations
(SPC-4 5.12); old initiators still use RESERVE(6)/(10). The state lives per
logical unit; with APTPL the persistent part is saved as JSON under state_dir.
The command handlers (RESERVE, RELEASE, PERSISTENT RESERVE IN/OUT) are in pr.py,
registered with @command; this module is the model they drive.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from target.scsi import sense as s
from target.scsi.nexus import Nexus
from target.scsi.registry import Access

log = logging.getLogger("bootsrv.scsi.pr")

WRITE_EXCLUSIVE, EXCLUSIVE_ACCESS = 1, 3
WE_REGISTRANTS_ONLY, EA_REGISTRANTS_ONLY = 5, 6
WE_ALL_REGISTRANTS, EA_ALL_REGISTRANTS = 7, 8
VALID_TYPES = frozenset({1, 3, 5, 6, 7, 8})
ALL_REGISTRANTS = frozenset({WE_ALL_REGISTRANTS, EA_ALL_REGISTRANTS})
REGISTRANTS_TYPES = frozenset({5, 6, 7, 8})
EXCLUSIVE_TYPES = frozenset({EXCLUSIVE_ACCESS, EA_REGISTRANTS_ONLY, EA_ALL_REGISTRANTS})

RESERVATIONS_PREEMPTED = (s.UNIT_ATTENTION, 0x2A, 0x03)
RESERVATIONS_RELEASED = (s.UNIT_ATTENTION, 0x2A, 0x04)
REGISTRATIONS_PREEMPTED = (s.UNIT_ATTENTION, 0x2A, 0x05)
INVALID_RELEASE = (s.ILLEGAL_REQUEST, 0x26, 0x04)

# Opcodes a nexus may still send while another holds an SPC-2 reservation.
_LEGACY_ALLOWED = frozenset({0x12, 0xA0, 0x03, 0x17, 0x57, 0xA3})


class ReservationConflict(Exception):
    """Becomes status RESERVATION CONFLICT."""


@dataclass(slots=True)
class Registration:
    key: int
    transport_id: bytes  # kept for READ FULL STATUS after the nexus is gone (APTPL)
    target_port: int = 1


@dataclass(slots=True)
class Reservations:
    path: Path | None = None  # where APTPL state is kept
    registrations: dict[str, Registration] = field(default_factory=dict)  # by nexus key
    holder: str | None = None  # nexus key; unused for all-registrants types
    type: int = 0  # 0: no persistent reservation
    generation: int = 0
    aptpl: bool = False
    legacy_holder: str | None = None  # RESERVE(6)/(10)
    # Queues a unit attention for one nexus (set by the logical unit).
    notify: Callable[[str, tuple[int, int, int]], None] | None = None

    # ---- conflicts --------------------------------------------------------

    @property
    def active(self) -> bool:
        """Any reservation at all (the hot path skips the checks when not)."""
        return self.legacy_holder is not None or bool(self.type)

    def conflicts(self, nexus: Nexus, access: Access, cdb: bytes) -> bool:
        key = nexus.key
        if self.legacy_holder is not None and self.legacy_holder != key:
            return cdb[0] not in _LEGACY_ALLOWED
        if access is Access.NONE or not self.type or self.is_holder(key):
            return False
        registered = key in self.registrations
        if self.type in REGISTRANTS_TYPES and registered:
            return False
        if self.type in EXCLUSIVE_TYPES:
            return True
        return access is Access.WRITE

    def is_holder(self, key: str) -> bool:
        if not self.type:
            return False
        if self.type in ALL_REGISTRANTS:
            return key in self.registrations
        return self.holder == key

    # ---- SPC-2 --------------------------------------------------------------

    def legacy_reserve(self, nexus: Nexus) -> None:
        if self.registrations or self.type:
            raise ReservationConflict
        if self.legacy_holder not in (None, nexus.key):
            raise ReservationConflict
        self.legacy_holder = nexus.key

    def legacy_release(self, nexus: Nexus) -> None:
        if self.type:
            raise ReservationConflict
        if self.legacy_holder == nexus.key:
            self.legacy_holder = None

    def nexus_lost(self, nexus: Nexus) -> None:
        if self.legacy_holder == nexus.key:
            self.legacy_holder = None

    def reset(self) -> None:
        self.legacy_holder = None  # persistent reservations survive resets (SPC-4 5.12.11)

    # ---- PERSISTENT RESERVE OUT ------------------------------------------------

    def register(self, nexus: Nexus, key: int, new_key: int, *, ignore_key: bool, aptpl: bool) -> None:
        current = self.registrations.get(nexus.key)
        if current is None:
            if key and not ignore_key:
                raise ReservationConflict
            if new_key:
                self.registrations[nexus.key] = Registration(new_key, nexus.transport_id(), nexus.target_port)
            self.generation += 1
        else:
            if current.key != key and not ignore_key:
                raise ReservationConflict
            if new_key:
                current.key = new_key
            else:
                self._unregister(nexus.key)
            self.generation += 1
        self.aptpl = aptpl
        self._save()

    def _unregister(self, key: str) -> None:
        was_holder = self.is_holder(key)
        del self.registrations[key]
        if not was_holder:
            return
        if self.type in ALL_REGISTRANTS:
            if not self.registrations:
                self._clear_reservation()
            return
        released_type = self.type
        self._clear_reservation()
        if released_type in REGISTRANTS_TYPES:
            self._tell_registrants(RESERVATIONS_RELEASED, exclude=key)

    def reserve(self, nexus: Nexus, key: int, kind: int) -> None:
        self._require_registered(nexus, key)
        if kind not in VALID_TYPES:
            raise s.CheckCondition(s.INVALID_FIELD_IN_CDB, field_pointer=2)
        if self.type:
            if not self.is_holder(nexus.key) or self.type != kind:
                raise ReservationConflict
            return
        self.type, self.holder = kind, nexus.key
        self._save()

    def release(self, nexus: Nexus, key: int, kind: int) -> None:
        self._require_registered(nexus, key)
        if not self.type or not self.is_holder(nexus.key):
            return
        if kind != self.type:
            raise s.CheckCondition(INVALID_RELEASE)
        released_type = self.type
        self._clear_reservation()
        if released_type in (WE_REGISTRANTS_ONLY, EA_REGISTRANTS_ONLY, WE_ALL_REGISTRANTS, EA_ALL_REGISTRANTS):
            self._tell_registrants(RESERVATIONS_RELEASED, exclude=nexus.key)
        self._save()

    def clear(self, nexus: Nexus, key: int) -> None:
        self._require_registered(nexus, key)
        self._tell_registrants(RESERVATIONS_PREEMPTED, exclude=nexus.key)
        self.registrations.clear()
        self._clear_reservation()
        self.generation += 1
        self._save()

    def preempt(self, nexus: Nexus, key: int, victim_key: int, kind: int) -> list[str]:
        """PREEMPT (and ABORT): returns the nexus keys whose registrations were removed."""
        self._require_registered(nexus, key)
        holder_key = self._holder_registration_key()
        everyone = self.type in ALL_REGISTRANTS and victim_key == 0
        takes_reservation = everyone or (holder_key is not None and holder_key == victim_key)
        if takes_reservation and kind not in VALID_TYPES:
            raise s.CheckCondition(s.INVALID_FIELD_IN_CDB, field_pointer=2)
        if not takes_reservation and victim_key == 0:
            raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST)
        removed = [k for k, r in self.registrations.items()
                   if k != nexus.key and (everyone or r.key == victim_key)]
        if not removed and not takes_reservation:
            raise ReservationConflict
        for victim in removed:
            del self.registrations[victim]
            self._notify(victim, REGISTRATIONS_PREEMPTED)
        if takes_reservation:
            self.type, self.holder = kind, nexus.key
        self.generation += 1
        self._save()
        return removed

    def _holder_registration_key(self) -> int | None:
        """The key of the one reservation holder (None: no reservation, or all registrants)."""
        if not self.type or self.type in ALL_REGISTRANTS or self.holder not in self.registrations:
            return None
        return self.registrations[self.holder].key

    def _require_registered(self, nexus: Nexus, key: int) -> None:
        registration = self.registrations.get(nexus.key)
        if registration is None or registration.key != key:
            raise ReservationConflict

    def _clear_reservation(self) -> None:
        self.type, self.holder = 0, None

    def _tell_registrants(self, triple: tuple[int, int, int], *, exclude: str) -> None:
        for key in self.registrations:
            if key != exclude:
                self._notify(key, triple)

    def _notify(self, key: str, triple: tuple[int, int, int]) -> None:
        if self.notify is not None:
            self.notify(key, triple)

    # ---- PERSISTENT RESERVE IN -------------------------------------------------

    def read_keys(self) -> bytes:
        keys = b"".join(struct.pack(">Q", r.key) for r in self.registrations.values())
        return struct.pack(">II", self.generation, len(keys)) + keys

    def read_reservation(self) -> bytes:
        if not self.type:
            return struct.pack(">II", self.generation, 0)
        key = self._holder_registration_key() or 0  # all-registrants types report key 0
        body = struct.pack(">QIBBH", key, 0, 0, self.type & 0x0F, 0)
        return struct.pack(">II", self.generation, len(body)) + body

    def read_full_status(self) -> bytes:
        body = b""
        for key, registration in self.registrations.items():
            holder = self.is_holder(key)
            descriptor = struct.pack(">QIBBIHI", registration.key, 0, 0x01 if holder else 0,
                                     (self.type & 0x0F) if holder else 0, 0, registration.target_port,
                                     len(registration.transport_id))
            body += descriptor + registration.transport_id
        return struct.pack(">II", self.generation, len(body)) + body

    @staticmethod
    def report_capabilities(aptpl: bool) -> bytes:
        # CRH (RESERVE/RELEASE conflict with persistent reservations), PTPL_C; TMV with
        # every type but the obsolete ones: WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX, EX_AC_AR.
        return struct.pack(">HBBBBH", 8, 0x10 | 0x01, 0x80 | (0x01 if aptpl else 0), 0xEA, 0x01, 0)

    # ---- persistence (APTPL) ------------------------------------------------------

    def _save(self) -> None:
        if self.path is None:
            return
        try:
            if not self.aptpl:
                if self.path.exists():
                    self.path.unlink()
                return
            state = {"generation": self.generation, "type": self.type, "holder": self.holder,
                     "registrations": {k: {"key": r.key, "transport_id": r.transport_id.hex(),
                                           "target_port": r.target_port} for k, r in self.registrations.items()}}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "w") as handle:
                json.dump(state, handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot persist reservations to %s: %s", self.path, exc)

    def load(self) -> None:
        if self.path is None or not self.path.exists():
            return
        try:
            state = json.loads(self.path.read_text())
            self.registrations = {k: Registration(int(v["key"]), bytes.fromhex(v["transport_id"]),
                                                  int(v.get("target_port", 1)))
                                  for k, v in state["registrations"].items()}
            self.generation, self.type, self.holder = int(state["generation"]), int(state["type"]), state["holder"]
            self.aptpl = True
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("ignoring unreadable reservation state %s: %s", self.path, exc)
