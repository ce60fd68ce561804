"""The `StoreError` family: every way a backing store fails, and nothing else.

A store raises only these (and lets programming errors through as they are).
The SCSI layer answers each kind with its own sense (target.scsi.store_sense),
so the class says what the initiator is told: a store error is never a
ValueError, which the SCSI layer reads as a malformed CDB.
"""

from __future__ import annotations

import errno


class StoreError(Exception):
    """A backing store failed (I/O error, corrupt metadata); the SCSI layer maps it to sense."""


class NoSpace(StoreError):
    """The file system is full (or the quota spent): the disk cannot take the write."""


class FormatError(StoreError):
    """The file is not a disk this backend can serve (damaged or foreign metadata, a
    missing parent), with the reason in words an admin can act on."""


class WouldBlock(StoreError):
    """A read asked not to wait (nowait=True) would wait for the disk: ask again
    from a thread. Raised before anything happened, so asking again is safe.
    Not a failure: whoever catches StoreError on a nowait path catches this first."""


def store_error(message: str, exc: OSError) -> StoreError:
    """The StoreError for a failed system call; NoSpace when the file system is full."""
    kind = NoSpace if exc.errno in (errno.ENOSPC, errno.EDQUOT) else StoreError
    return kind(f"{message}: {exc.strerror}")
