"""GatedStore: a hold waits for in-flight I/O, keeps new I/O waiting, and a swap
takes effect for the I/O that waited."""

from __future__ import annotations

import threading
import time

from target.stores.gate import GatedStore
from target.stores.raw import RawStore
from target.stores.vhd import open_vhd
from target.stores.vhd.create import create_differencing, create_dynamic


class SlowStore(RawStore):
    """A raw store whose writes wait for a signal: an in-flight write we control."""

    def __init__(self, path, release: threading.Event) -> None:
        super().__init__(path)
        self.release = release

    def write(self, offset, data, *, durable=False):
        self.release.wait(10)
        super().write(offset, data, durable=durable)


def test_hold_drains_in_flight_writes_then_swaps_for_waiting_ones(tmp_path):
    first, second = tmp_path / "a.img", tmp_path / "b.img"
    for path in (first, second):
        RawStore.create(path, 1 << 20).close()
    release = threading.Event()
    gate = GatedStore(SlowStore(first, release))
    in_flight = threading.Thread(target=gate.write, args=(0, b"\x01" * 512))
    in_flight.start()
    time.sleep(0.05)
    events: list[str] = []

    def take_hold() -> None:
        with gate.hold() as store:
            events.append("held")
            assert store.read(0, 512) == b"\x01" * 512  # the in-flight write finished first
            late.start()
            time.sleep(0.05)
            assert not later_done.is_set()  # new I/O waits while held
            gate.swap(RawStore(second)).close()
        events.append("released")

    later_done = threading.Event()

    def later_write() -> None:
        gate.write(512, b"\x02" * 512)
        later_done.set()

    late = threading.Thread(target=later_write)
    holder = threading.Thread(target=take_hold)
    holder.start()
    time.sleep(0.05)
    assert events == []  # the hold waits for the in-flight write
    release.set()
    holder.join(10)
    late.join(10)
    assert events == ["held", "released"] and later_done.is_set()
    assert gate.read(512, 512) == b"\x02" * 512  # the waiting write went to the new store
    assert gate.read(0, 512) == bytes(512)
    assert gate.last_hold_seconds > 0
    gate.close()


def test_reopen_puts_unflushed_writes_on_disk_before_the_new_store_opens(tmp_path):
    parent, child = tmp_path / "golden.vhd", tmp_path / "child.vhd"
    create_dynamic(parent, 4 << 20)
    create_differencing(child, parent)
    gate = GatedStore(open_vhd(child))
    gate.write(0, b"\x01" * 512)
    gate.flush()
    gate.write(512, b"\x02" * 512)  # its bitmap bit is only in the store's memory until a flush
    seen_on_disk: list[bytes] = []

    def peek() -> None:
        other = open_vhd(child, readonly=True)
        seen_on_disk.append(other.read(512, 512))
        other.close()

    gate.reopen(lambda: open_vhd(child), before_open=peek)
    assert seen_on_disk == [b"\x02" * 512]
    assert gate.read(0, 1024) == b"\x01" * 512 + b"\x02" * 512
    gate.close()


def open_descriptors() -> int:
    import os
    return len(os.listdir("/proc/self/fd"))


def test_a_parked_disk_closes_its_files_and_opens_again_on_use(tmp_path):
    import pytest
    from target.stores.base import WouldBlock
    golden = tmp_path / "golden.vhd"
    create_dynamic(golden, 8 << 20)
    create_differencing(tmp_path / "ws01.vhd", golden)
    gate = GatedStore(open_vhd(tmp_path / "ws01.vhd"))
    gate.write(4096, b"\x5a" * 512)  # a first write into a block: its bitmap bit waits for a flush
    before = open_descriptors()
    assert gate.park(lambda: open_vhd(tmp_path / "ws01.vhd")) and gate.parked
    assert open_descriptors() == before - 2  # the disk and its image
    assert gate.size == 8 << 20 and gate.refresh_size() == 8 << 20 and gate.parked  # no open for that
    with pytest.raises(WouldBlock):  # the event loop never opens files: a thread reads instead
        gate.read(4096, 512, nowait=True)
    assert gate.read(4096, 512) == b"\x5a" * 512 and not gate.parked  # the park flushed it
    assert open_descriptors() == before
    assert gate.park(lambda: open_vhd(tmp_path / "ws01.vhd"))
    with gate.hold() as store:  # a holder (snapshot, reset) gets the real store
        assert store.read(4096, 512) == b"\x5a" * 512
    gate.close()
