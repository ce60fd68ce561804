"""Durable file steps shared by the engine, exports, image versions and the configuration
editor, and the one sha256 of a file they record."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from target.stores.base import fsync_dir

__all__ = ["file_sha256", "fsync_dir", "write_text_atomic"]


def file_sha256(path: str | os.PathLike[str], progress: Callable[[int], None] = lambda count: None) -> str:
    """`progress(count)` after each chunk read (a 40 GiB export takes minutes to hash)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            progress(len(chunk))
    return digest.hexdigest()


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
