"""The I_T nexus: which initiator port talks to which target port (SAM-5 4.6.3).

Unit attentions, reservations and PREVENT state all belong to a nexus, so the
command sets see one with every command. The transport builds it; the command
sets know no iSCSI beyond the TransportID format they must report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ISCSI_PROTOCOL_ID = 0x5


@dataclass(frozen=True, slots=True)
class Nexus:
    initiator: str  # iSCSI initiator name
    isid: bytes = b"\0" * 6
    target_port: int = 1  # relative target port identifier
    # The SCSI initiator port name, 'iqn...,i,0x<ISID>' (RFC 7143 13.4); looked up on every command.
    key: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.initiator},i,0x{self.isid.hex()}")

    def transport_id(self) -> bytes:
        """iSCSI TransportID, format 01b: initiator port name (SPC-4 7.6.4.6)."""
        name = self.key.encode() + b"\0"
        name += b"\0" * (-len(name) % 4)
        return bytes((0x40 | ISCSI_PROTOCOL_ID, 0)) + len(name).to_bytes(2, "big") + name


LOCAL = Nexus("local")  # for in-process callers (tests, tools) that are no initiator
