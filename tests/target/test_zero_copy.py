"""The zero-copy data path: file slices for READ data, the socket writer that
sends them, data-out received straight into its buffer, reads that never wait
on the event loop. Bytes are compared end to end, over real files and sockets."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import google_crc32c
import pytest
from hypothesis import given, settings, strategies as st

from target.iscsi.output import SocketOutput
from target.iscsi.pdu import PduReader, encode
from target.iscsi.wire import data_out
from target.stores.base import WouldBlock
from target.stores.gate import GatedStore
from target.stores.pieces import FileSlice, Pieces, file_handle, in_page_cache
from target.stores.raw import RawStore
from tests.support.pdus import pdus_in_chunks

MiB = 1 << 20


@pytest.fixture
def raw(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(os.urandom(4 * MiB))
    store = RawStore(path)
    yield store
    store.close()


@settings(max_examples=80, deadline=None)
@given(cuts=st.lists(st.integers(0, 64), min_size=1, max_size=6), start=st.integers(0, 200),
       stop=st.integers(0, 200))
def test_pieces_slice_like_bytes(tmp_path_factory, cuts, start, stop):
    path = tmp_path_factory.mktemp("p") / "f"
    content = bytes(range(256)) * 2
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    handle = file_handle(fd, str(path))
    os.close(fd)
    parts: list = []
    pos = 0
    for n, size in enumerate(cuts):  # alternate file slices and in-memory buffers
        parts.append(FileSlice(handle, pos, size) if n % 2 else content[pos:pos + size])
        pos += size
    pieces = Pieces(parts)
    assert pieces.tobytes() == content[:pos]
    assert pieces[start:stop].tobytes() == content[:pos][start:stop]


def test_a_slice_outlives_its_store_and_never_reads_another_file(raw, tmp_path):
    expected = raw.read(MiB, 64 * 1024)
    pieces = raw.read_pieces(MiB, 64 * 1024)
    raw.close()
    other = tmp_path / "other.img"
    other.write_bytes(b"\xee" * (2 * MiB))
    reused = RawStore(other)  # likely takes the closed store's descriptor number
    try:
        assert pieces.tobytes() == expected
    finally:
        reused.close()
    raw._fd = os.open(raw.path, os.O_RDONLY)  # for the fixture's close


def test_reads_on_the_loop_never_wait_for_the_disk(raw):
    raw.flush()
    refused = False
    for attempt in range(5):  # under load a dropped page can be back before the read (seen once in CI)
        os.posix_fadvise(raw._fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if in_page_cache(raw._fd, 0, 4096):
            if attempt == 0:
                pytest.skip("this file system keeps the pages (tmpfs?)")
            continue
        try:
            raw.read(0, 4096, nowait=True)
        except WouldBlock:  # (a refused read starts readahead: the page comes back soon after)
            refused = True
            break
    assert refused, "a nowait read of pages not in the page cache never refused"
    data = raw.read(0, 4096)  # a worker thread's read: waits, and fills the cache
    assert raw.read(0, 4096, nowait=True) == data
    gate = GatedStore(raw)
    with gate.hold():
        with pytest.raises(WouldBlock):  # a held disk would make the loop wait: a thread waits instead
            gate.read(0, 4096, nowait=True)


def test_slices_not_in_the_page_cache_are_read_by_the_caller(raw):
    raw.flush()
    os.posix_fadvise(raw._fd, 0, 0, os.POSIX_FADV_DONTNEED)
    if in_page_cache(raw._fd, 0, MiB):
        pytest.skip("this file system keeps the pages (tmpfs?)")
    with pytest.raises(WouldBlock):  # asked on the event loop: a thread reads it
        raw.read_pieces(0, MiB, nowait=True)
    pieces = raw.read_pieces(0, MiB)
    assert not any(isinstance(part, FileSlice) for part in pieces.parts)
    assert raw.read_pieces(0, MiB).parts[0].__class__ is FileSlice  # cached by the first read
    assert raw.read_pieces(0, MiB, nowait=True).parts[0].__class__ is FileSlice


def test_socket_output_sends_buffers_and_slices_in_order_under_back_pressure(raw):
    async def scenario() -> tuple[bytes, bytes, list[bool]]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        pressure: list[bool] = []
        output = SocketOutput(loop, ours.fileno(), on_pressure=pressure.append, on_error=lambda exc: None)
        expected = bytearray()
        for n in range(24):  # 24 x (header + 1 MiB slice + tail): far more than the socket holds
            header = struct.pack(">I", n) * 12
            pieces = raw.read_pieces(n % 4 * MiB, MiB)
            output.send([header, pieces, b"tail"])
            expected += header + raw.read(n % 4 * MiB, MiB) + b"tail"
        received = bytearray()
        while len(received) < len(expected):
            received += await loop.sock_recv(theirs, 1 << 20)
        drained = asyncio.Event()
        output.when_drained(drained.set)
        await asyncio.wait_for(drained.wait(), 10)
        output.close()
        ours.close()
        theirs.close()
        return bytes(received), bytes(expected), pressure

    received, expected, pressure = asyncio.run(scenario())
    assert received == expected
    assert pressure[:2] == [True, False]  # reading stopped while the queue was deep, then resumed


def _data_out(data: bytes, *, data_digest: bool) -> bytes:
    bhs = data_out(itt=7, ttt=1, offset=4096)
    return b"".join(bytes(p) for p in encode(bhs, data, data_digest=data_digest))


@settings(max_examples=40, deadline=None)
@given(split=st.integers(1, 70000), digest=st.booleans(), corrupt=st.booleans())
def test_large_data_out_lands_in_the_named_buffer(split, digest, corrupt):
    data = os.urandom(65536 + 3)  # odd length: padding follows
    wire = bytearray(_data_out(data, data_digest=digest) + _data_out(b"small", data_digest=digest))
    if corrupt and digest:
        wire[48 + 100] ^= 1
    target = bytearray(200000)
    asked: list[int] = []

    def sink(bhs: bytes) -> memoryview:
        asked.append(int.from_bytes(bhs[40:44], "big"))
        length = int.from_bytes(bhs[5:8], "big")
        return memoryview(target)[4096:4096 + length]

    reader = PduReader(max_data_segment=1 << 20, sink=sink)
    reader.data_digest = digest
    pdus = pdus_in_chunks(reader, wire, split)
    assert len(pdus) == 2
    first, second = pdus
    assert bytes(first.data) == bytes(wire[48:48 + len(data)])
    assert first.data_digest_ok == (not (corrupt and digest))
    if first.in_place:  # the header came before the data was complete: received into place
        assert asked == [4096] and target[4096:4096 + len(data)] == wire[48:48 + len(data)]
    assert bytes(second.data) == b"small" and not second.in_place
    if digest and not corrupt:
        assert struct.unpack("<I", wire[48 + len(data) + 1:48 + len(data) + 5])[0] == google_crc32c.value(
            bytes(data) + b"\0")
