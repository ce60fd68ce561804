"""What a store says about its layers: the interface the snapshot engine works through.

A disk may be a chain of layers (a differencing VHD over its parents); a store
that is not (a raw image, a fixed VHD) is a chain of one layer that holds every
sector but its holes. Snapshots freeze, merge and relink layers through these
calls alone, whatever the backend, so they never ask which class a store is.
"""

from __future__ import annotations

from typing import Protocol

from target.stores.base import BlockStore

Run = tuple[int, int, bool]  # (offset, length, present)


class LayeredStore(BlockStore, Protocol):
    path: str  # the layer's own file (or locator)

    @property
    def parent(self) -> "LayeredStore | None":
        """The layer this one reads through where it holds nothing; None at the bottom."""
        ...

    @property
    def uuid(self) -> bytes | None:
        """The layer's identity as its children name it; None for a backend without one."""
        ...

    def layers(self) -> list["LayeredStore"]:
        """This layer, its parent, its parent's parent, ... (all open already)."""
        ...

    def own_runs(self, offset: int, length: int) -> list[Run]:
        """(offset, length, present) runs over [offset, offset+length): present = this
        layer itself holds the sectors (its parents are not looked at)."""
        ...

    def held_bytes(self) -> int:
        """Bytes of disk data this layer itself holds (a snapshot's unique data)."""
        ...


class SingleLayer:
    """The LayeredStore calls of a store that is one whole layer (raw, fixed VHD):
    no parent, every sector held but holes (which read as zeros, as absent data
    with no parent does)."""

    parent: "LayeredStore | None" = None
    size: int

    def layers(self) -> list[LayeredStore]:
        return [self]  # type: ignore[list-item]

    def own_runs(self, offset: int, length: int) -> list[Run]:
        return list(self.extents(offset, length))  # type: ignore[attr-defined]

    def held_bytes(self) -> int:
        return self.size
