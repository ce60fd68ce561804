"""Durable file steps shared by the engine, exports and the configuration editor."""

from __future__ import annotations

import os
from pathlib import Path

from target.stores.base import fsync_dir

__all__ = ["fsync_dir", "write_text_atomic"]


def write_text_atomic(path: Path, text: str, mode: int | None = None) -> None:
    """Readers see the old content or the new, never half of it, even after a crash."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    if mode is not None:
        os.chmod(partial, mode)
    os.replace(partial, path)
    fsync_dir(path.parent)
