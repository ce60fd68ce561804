"""A disk that, like an RBD image several servers share (target/stores/rbd/lock.py), a session
claims before using it: a real raw file whose claims this server grants, or refuses as if
another server held it (with or without that server's portal), for the transport's tests."""

from __future__ import annotations

from target.stores.raw import RawStore
from target.stores.rbd.lock import Refused


class ClaimedDisk:
    def __init__(self, store: RawStore, held_by: str | None = None, portal: str = "") -> None:
        self.store = store
        self.held_by = held_by  # another server's name, or None: ours to take
        self.portal = portal  # that server's portal, where logins are sent
        self.holders: set[str] = set()

    claims = True

    def claim(self, holder: str) -> None:
        if self.held_by is not None:
            raise Refused(f"{self.store.path} is served by node {self.held_by}", self.portal)
        self.holders.add(holder)

    def release(self, holder: str) -> None:
        self.holders.discard(holder)

    def __getattr__(self, name: str) -> object:  # the rest of BlockStore: the raw file's
        return getattr(self.store, name)
