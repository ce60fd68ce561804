"""CRC32C (Castagnoli) as iSCSI digests use it (RFC 7143 13.1)."""

from __future__ import annotations

import google_crc32c


def crc32c(*chunks: bytes | bytearray | memoryview) -> int:
    """CRC32C over the concatenation of `chunks`.

    iSCSI puts the digest on the wire little-endian: the RFC's example gives the
    CRC register's bytes in transmission order, which equals packing the
    standard CRC32C value as a little-endian integer, then reading it big-endian.
    Callers pack the returned value with '>I', so it is byte-swapped here.
    """
    value = 0
    for chunk in chunks:
        # The C extension takes only bytes: other buffers are copied (cheap beside the wire).
        value = google_crc32c.extend(value, chunk if type(chunk) is bytes else bytes(chunk))
    return int.from_bytes(value.to_bytes(4, "little"), "big")
