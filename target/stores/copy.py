"""Copying one disk's content into a new, empty one of any backend: only what the source holds
(its extents), and of that only what is not zeros, so holes stay holes. A new disk reads zeros
wherever nothing was written, so skipping zeros changes no byte."""

from __future__ import annotations

from typing import Callable

from target.stores.base import BlockStore
from target.stores.meter import NO_METER, Meter

CHUNK = 4 << 20


def copy_content(source: BlockStore, target: BlockStore, *, chunk: int = CHUNK,
                 between: Callable[[], None] = lambda: None, progress: Meter = NO_METER) -> None:
    """Write every non-zero chunk of `source` into the empty `target`, then flush it.
    `between` runs before each chunk (a long copy gives up there when the server stops).
    `progress` counts every byte of the source gone through, holes included."""
    progress.set_total(source.size)
    for start, length, mapped in source.extents(0, source.size):
        if not mapped:
            progress.advance(length)
        for offset in range(start, start + length, chunk) if mapped else ():
            between()
            data = source.read(offset, min(chunk, start + length - offset))
            if any(data):
                target.write(offset, data)
            progress.advance(len(data))
    target.flush()
