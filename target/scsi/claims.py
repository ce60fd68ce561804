"""A device whose stores one server at a time may serve (an RBD image shared by several
servers): what a claim that failed says."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClaimRefused:
    """Why this server may not serve a device now; `moved_to`: the portal ("host:port") of the
    server that does, where the transport may send the initiator (iSCSI: a login redirect)."""

    reason: str
    moved_to: str = ""
