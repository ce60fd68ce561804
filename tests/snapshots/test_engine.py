"""The snapshot engine against a model: random writes, snapshots, deletes and
rollbacks on a live disk (through its gate, as initiators write), then every
snapshot and the live disk must read exactly what the model says, and every
file must check clean. Also the exports built from such trees."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from snapshots.catalog import Catalog, vhd_files
from snapshots.engine import SnapshotEngine, SnapshotError, Volume
from snapshots.export import export_snapshot, verify
from target.stores.gate import GatedStore
from target.stores.raw import RawStore
from target.stores.vhd import open_vhd
from target.stores.vhd.check import check_vhd
from target.stores.vhd.create import create_differencing, create_dynamic

MiB = 1 << 20
SIZE = 6 * MiB  # three 2 MiB blocks: writes land in shared, partial and untouched blocks


def engine_for(tmp: Path, base: str) -> tuple[SnapshotEngine, Volume]:
    live = tmp / "disks" / "d.vhd"
    live.parent.mkdir(parents=True)
    if base == "differencing":
        golden = tmp / "golden.vhd"
        create_dynamic(golden, SIZE)
        store = open_vhd(golden)
        store.write(0, b"\x77" * SIZE)
        store.close()
        create_differencing(live, golden)
    else:
        create_dynamic(live, SIZE)
    engine = SnapshotEngine(Catalog(tmp / "state" / "snapshots.sqlite"))
    volume = Volume("d", live, GatedStore(open_vhd(live)))
    engine.add_volume(volume)
    return engine, volume


def read_all(store) -> bytes:
    return store.read(0, store.size)


steps = st.lists(st.one_of(
    st.tuples(st.just("write"), st.integers(0, SIZE // 512 - 1), st.integers(1, 2048), st.integers(1, 255)),
    st.tuples(st.just("unmap"), st.integers(0, SIZE // 512 - 1), st.integers(1, 8192), st.just(0)),
    st.tuples(st.just("snapshot"), st.just(0), st.just(0), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 20), st.just(0), st.just(0)),
    st.tuples(st.just("rollback"), st.integers(0, 20), st.just(0), st.just(0)),
), min_size=1, max_size=14)


@pytest.mark.parametrize("base", ["dynamic", "differencing"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=steps)
def test_snapshot_tree_matches_model(tmp_path_factory, base, script):
    tmp = tmp_path_factory.mktemp("engine")
    engine, volume = engine_for(tmp, base)
    model = bytearray(read_all(volume.gate))
    taken: dict[int, bytes] = {}
    for op, a, b, c in script:
        if op in ("write", "unmap"):
            count = min(b, SIZE // 512 - a)
            data = bytes([c]) * (count * 512)
            if op == "write":
                volume.gate.write(a * 512, data)
            else:  # after a snapshot the live layer is differencing: unmapped sectors must still read zeros
                volume.gate.unmap(a * 512, len(data))
            model[a * 512:a * 512 + len(data)] = data
        elif op == "snapshot":
            taken[engine.create("d").id] = bytes(model)
        elif taken and op == "delete":
            victim = sorted(taken)[a % len(taken)]
            engine.delete(victim)
            del taken[victim]
        elif taken and op == "rollback":
            chosen = sorted(taken)[a % len(taken)]
            engine.rollback(chosen)
            model = bytearray(taken[chosen])
    assert read_all(volume.gate) == bytes(model)
    for snap_id, content in taken.items():
        view = engine.open_view(snap_id)
        assert read_all(view) == content, f"snapshot {snap_id}"
        engine.close_view(snap_id)
    for path in [volume.path, *(volume.path.parent / "d.snapshots").glob("*.vhd")]:
        assert check_vhd(path).ok, (path, check_vhd(path).findings)
    assert sorted(p.name for p in (volume.path.parent / "d.snapshots").glob("*")) == sorted(
        f"{i}.vhd" for i in taken)


def test_exports_of_a_branching_tree(tmp_path):
    engine, volume = engine_for(tmp_path, "differencing")
    volume.gate.write(0, b"\x01" * MiB)
    one = engine.create("d").id
    volume.gate.write(MiB, b"\x02" * MiB)
    two = engine.create("d").id
    engine.rollback(one)  # a new branch from one
    volume.gate.write(3 * MiB, b"\x03" * 512)
    three = engine.create("d").id
    dest = tmp_path / "backup"
    base = export_snapshot(engine, two, dest)
    for target in (three, one):  # an incremental across branches, and one back in time
        incremental = export_snapshot(engine, target, dest, incremental_from=two)
        assert verify(incremental.path) == []
        chain = open_vhd(incremental.path, readonly=True)
        view = engine.open_view(target)
        assert read_all(chain) == read_all(view)
        chain.close()
        engine.close_view(target)
    engine.delete(two)  # the base snapshot is gone: the next incremental compares with its export
    late = export_snapshot(engine, three, dest, incremental_from=two)
    chain = open_vhd(late.path, readonly=True)
    assert read_all(chain) == read_all(engine.open_view(three))
    chain.close()
    assert late.base == base.path


def test_refusals_are_one_line_errors(tmp_path):
    engine, volume = engine_for(tmp_path, "dynamic")
    with pytest.raises(SnapshotError, match="no disk or client named 'nope'"):
        engine.create("nope")
    with pytest.raises(SnapshotError, match="no snapshot 42"):
        engine.delete(42)
    snap = engine.create("d")
    volume.sessions = lambda: 1
    with pytest.raises(SnapshotError, match="in use by 1 iSCSI session"):
        engine.rollback(snap.id)
    raw = tmp_path / "raw.img"
    raw.write_bytes(bytes(MiB))
    engine.add_volume(Volume("r", raw, GatedStore(RawStore(raw))))
    with pytest.raises(SnapshotError, match="raw image"):
        engine.create("r")


def test_a_snapshot_is_refused_below_the_free_space_floor(tmp_path):
    engine, volume = engine_for(tmp_path, "dynamic")
    engine.min_free = shutil.disk_usage(tmp_path).free + (1 << 40)  # a floor no file system here meets
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(SnapshotError, match=r"refused: .* GiB free on the file system of .*d\.vhd, below "
                                            r"snapshots\.min_free"):
        engine.create("d")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before and engine.catalog.snapshots() == []
    engine.min_free = 0
    assert engine.create("d").id


def test_interrupted_create_is_undone_or_finished(tmp_path):
    engine, volume = engine_for(tmp_path, "dynamic")
    volume.gate.write(0, b"\x09" * 4096)
    # Interrupted after the link, before the switch: the stray link goes, the row too.
    snap = engine.catalog.begin_snapshot("d", "", "manual", vhd_files(volume.path.parent / "d.snapshots"))
    Path(snap.file).parent.mkdir(exist_ok=True)
    os.link(volume.path, snap.file)
    assert any("rolled back" in line for line in engine.recover())
    assert not Path(snap.file).exists() and engine.catalog.get(snap.id) is None
    assert volume.gate.read(0, 4096) == b"\x09" * 4096


def test_a_snapshot_recorded_without_its_file_name_is_removed_at_recovery(tmp_path):
    # What a crash between the catalog's two statements left before they were one transaction.
    engine, volume = engine_for(tmp_path, "dynamic")
    volume.gate.write(0, b"\x07" * 4096)
    engine.catalog._run("INSERT INTO snapshots (disk, created, origin, state) VALUES ('d', 0, 'manual', 'creating')")
    assert any("before its file was named" in line for line in engine.recover())
    assert engine.catalog.snapshots() == []
    assert volume.gate.read(0, 4096) == b"\x07" * 4096
    assert engine.create("d").id


def test_a_snapshot_that_recovery_cannot_finish_stays_and_the_rest_goes_on(tmp_path, caplog):
    engine, volume = engine_for(tmp_path, "dynamic")
    broken = engine.catalog.begin_snapshot("d", "", "manual", vhd_files(volume.path.parent / "d.snapshots"))
    Path(broken.file).parent.mkdir(exist_ok=True)
    Path(broken.file).write_bytes(b"not a VHD" * 100)  # a file recovery can make nothing of
    undone = engine.catalog.begin_snapshot("d", "", "manual", vhd_files(volume.path.parent / "d.snapshots"))
    assert any(f"rolled back snapshot {undone.id}" in line for line in engine.recover())  # no exception
    assert f"snapshot {broken.id} of d (creating) could not be finished or undone" in caplog.text
    assert engine.catalog.get(broken.id) is not None and engine.catalog.get(undone.id) is None


def test_creates_and_deletes_under_a_writing_client_lose_no_flushed_write(tmp_path):
    # Found by the power-cut trials: a delete reopened the live disk and let the client in
    # before the old store had saved its bitmap bits, so the new store cached a bitmap
    # without them (reads fell through to the parent) and its next flush wrote that stale
    # bitmap over the saved bits: writes acknowledged and flushed read as older data.
    engine, volume = engine_for(tmp_path, "dynamic")
    model = bytearray(SIZE)
    done = threading.Event()
    errors: list[str] = []

    def client() -> None:
        rng = random.Random(3)
        try:
            for n in itertools.count():
                if done.is_set():
                    return
                sector, data = rng.randrange(SIZE // 512), rng.randbytes(512)
                volume.gate.write(sector * 512, data)
                model[sector * 512:(sector + 1) * 512] = data
                if n % 8 == 7:
                    volume.gate.flush()
                if volume.gate.read(sector * 512, 512) != data:
                    errors.append(f"sector {sector} does not read back")
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    writer = threading.Thread(target=client)
    writer.start()
    try:
        kept: list[int] = []
        for _ in range(30):
            kept.append(engine.create("d").id)
            if len(kept) > 2:
                engine.delete(kept.pop(0))
    finally:
        done.set()
        writer.join()
    assert not errors, errors[:3]
    volume.gate.flush()
    assert read_all(volume.gate) == model
    reopened = open_vhd(volume.path, readonly=True)
    try:
        assert read_all(reopened) == model
    finally:
        reopened.close()
