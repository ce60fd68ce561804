"""Copying one disk's content into a new, empty one of any backend: only what the source holds
(its extents), and of that only what is not zeros, so holes stay holes. A new disk reads zeros
wherever nothing was written, so skipping zeros changes no byte."""

from __future__ import annotations

from typing import Callable

from target.stores.base import BlockStore

CHUNK = 4 << 20


def copy_content(source: BlockStore, target: BlockStore, *, chunk: int = CHUNK,
                 between: Callable[[], None] = lambda: None,
                 progress: Callable[[int], None] = lambda count: None) -> None:
    """Write every non-zero chunk of `source` into the empty `target`, then flush it.
    `between` runs before each chunk (a long copy gives up there when the server stops).
    `progress(count)` is told of every byte of the source gone through, holes included,
    so that done reaches the source's size."""
    for start, length, mapped in source.extents(0, source.size):
        if not mapped:
            progress(length)
        for offset in range(start, start + length, chunk) if mapped else ():
            between()
            data = source.read(offset, min(chunk, start + length - offset))
            if any(data):
                target.write(offset, data)
            progress(len(data))
    target.flush()
