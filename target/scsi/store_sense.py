"""How a backing store's failure is answered: one table from StoreError kind to sense.

The most specific kind listed wins (looked up along the exception's class
hierarchy). WouldBlock is not here: it is no failure, the transport asks again
from a thread, so the logical unit lets it through before consulting the table.
"""

from __future__ import annotations

from target.scsi import sense as s
from target.stores.errors import NoSpace, StoreError

Triple = tuple[int, int, int]

# kind -> (sense for a command that reads, sense for one that writes or changes the medium)
STORE_SENSE: dict[type[StoreError], tuple[Triple, Triple]] = {
    NoSpace: (s.SPACE_ALLOCATION_FAILED_WRITE_PROTECT, s.SPACE_ALLOCATION_FAILED_WRITE_PROTECT),  # SBC-3 4.7.3.6
    # Everything else, FormatError included: the medium could not be read or written.
    StoreError: (s.UNRECOVERED_READ_ERROR, s.WRITE_ERROR),
}


def store_error_sense(exc: StoreError, *, reading: bool) -> Triple:
    """The sense for a store error raised by a command that reads (or not)."""
    for kind in type(exc).__mro__:
        pair = STORE_SENSE.get(kind)  # type: ignore[call-overload]
        if pair is not None:
            return pair[0] if reading else pair[1]
    raise AssertionError(f"{type(exc).__name__} is not a StoreError")  # StoreError itself is in the table
