"""RESERVE/RELEASE (6)/(10) and PERSISTENT RESERVE IN/OUT (SPC-4 6.15, 6.16)."""

from __future__ import annotations

import struct

from target.scsi import sense as s
from target.scsi.cdb import be, invalid_field, need, truncate
from target.scsi.lu import LogicalUnit
from target.scsi.registry import Access, Command, command
from target.scsi.reservations import ReservationConflict

PERSISTENT_RESERVE_IN = 0x5E
PERSISTENT_RESERVE_OUT = 0x5F
READ_KEYS, READ_RESERVATION, REPORT_CAPABILITIES, READ_FULL_STATUS = range(4)
REGISTER, RESERVE, RELEASE, CLEAR, PREEMPT, PREEMPT_AND_ABORT, REGISTER_AND_IGNORE = range(7)


def _conflict() -> s.ScsiResult:
    return s.ScsiResult(s.RESERVATION_CONFLICT)


@command(0x16, 0x56, access=Access.NONE, usage="oo0000000007 oo00000000000000000007")
def reserve(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    if cmd.cdb[0] == 0x56:
        need(cmd.cdb, 10)
        if cmd.cdb[1] & 0x03:  # third-party and long-ID reservations: not supported
            raise invalid_field(1)
    try:
        lu.reservations.legacy_reserve(cmd.nexus)
    except ReservationConflict:
        return _conflict()
    return s.ScsiResult()


@command(0x17, 0x57, access=Access.NONE, usage="oo0000000007 oo00000000000000000007")
def release(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    try:
        lu.reservations.legacy_release(cmd.nexus)
    except ReservationConflict:
        return _conflict()
    return s.ScsiResult()


@command(PERSISTENT_RESERVE_IN, access=Access.NONE, service_actions=(0, 1, 2, 3),
         usage="oo1f000000000000ffff07")
def persistent_reserve_in(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 10)
    action, allocation = cdb[1] & 0x1F, be(cdb, 7, 2)
    state = lu.reservations
    if action == READ_KEYS:
        payload = state.read_keys()
    elif action == READ_RESERVATION:
        payload = state.read_reservation()
    elif action == REPORT_CAPABILITIES:
        payload = state.report_capabilities(state.aptpl)
    elif action == READ_FULL_STATUS:
        payload = state.read_full_status()
    else:
        raise invalid_field(1)
    return s.ScsiResult(data=truncate(payload, allocation))


@command(PERSISTENT_RESERVE_OUT, access=Access.NONE, service_actions=(0, 1, 2, 3, 4, 5, 6),
         usage="oo1fff0000ffffffff07")
def persistent_reserve_out(lu: LogicalUnit, cmd: Command) -> s.ScsiResult:
    cdb = cmd.cdb
    need(cdb, 10)
    action, scope, kind, length = cdb[1] & 0x1F, cdb[2] >> 4, cdb[2] & 0x0F, be(cdb, 5, 4)
    if action > REGISTER_AND_IGNORE:
        raise invalid_field(1)  # REGISTER AND MOVE and beyond: not supported
    data = bytes(cmd.data or b"")
    if length != 24 or len(data) < 24:
        raise s.CheckCondition(s.PARAMETER_LIST_LENGTH_ERROR)
    key, action_key = struct.unpack_from(">QQ", data)
    flags = data[20]
    if flags & 0x0C:  # SPEC_I_PT, ALL_TG_PT: one target port, no third parties
        raise s.CheckCondition(s.INVALID_FIELD_IN_PARAMETER_LIST, field_pointer=20)
    if action in (RESERVE, RELEASE, PREEMPT, PREEMPT_AND_ABORT) and scope != 0:
        raise invalid_field(2)  # LU_SCOPE only
    state, nexus = lu.reservations, cmd.nexus
    try:
        if action in (REGISTER, REGISTER_AND_IGNORE):
            state.register(nexus, key, action_key, ignore_key=action == REGISTER_AND_IGNORE,
                           aptpl=bool(flags & 0x01))
        elif action == RESERVE:
            state.reserve(nexus, key, kind)
        elif action == RELEASE:
            state.release(nexus, key, kind)
        elif action == CLEAR:
            state.clear(nexus, key)
        else:
            state.preempt(nexus, key, action_key, kind)
    except ReservationConflict:
        return _conflict()
    return s.ScsiResult()
