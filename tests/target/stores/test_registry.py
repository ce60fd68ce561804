"""The store registry's one rule for "which backend is this", and the LayeredStore calls."""

import pytest

from target.stores import registry
from target.stores.errors import FormatError, StoreError
from target.stores.raw import RawStore
from target.stores.registry import Backend, backend_for, create_store, open_store
from target.stores.vhd import VhdStore
from target.stores.vhd.create import create_dynamic

MiB = 1 << 20


def test_the_suffix_picks_the_backend_and_anything_else_is_raw(tmp_path):
    assert backend_for(tmp_path / "a.vhd")[0].name == "vhd"
    assert backend_for(tmp_path / "A.VHD")[0].name == "vhd"
    assert backend_for(tmp_path / "a.img")[0].name == "raw"
    assert backend_for(tmp_path / "noext")[0].name == "raw"


def test_sniffing_finds_a_vhd_under_another_name(tmp_path):
    create_dynamic(tmp_path / "disk.bin", 4 * MiB)
    assert backend_for(tmp_path / "disk.bin")[0].name == "raw"  # serving goes by the name alone
    assert backend_for(tmp_path / "disk.bin", sniff=True)[0].name == "vhd"
    store = open_store(tmp_path / "disk.bin", sniff=True)
    assert isinstance(store, VhdStore)
    store.close()


def test_create_then_open_each_backend(tmp_path):
    create_store(tmp_path / "r.img", 4 * MiB)
    create_store(tmp_path / "base.vhd", 4 * MiB)
    create_store(tmp_path / "child.vhd", parent=tmp_path / "base.vhd")
    raw, child = open_store(tmp_path / "r.img"), open_store(tmp_path / "child.vhd", readonly=True)
    try:
        assert isinstance(raw, RawStore) and raw.size == 4 * MiB
        assert [layer.path for layer in child.layers()] == [str(tmp_path / "child.vhd"),
                                                            str((tmp_path / "base.vhd").resolve())]
        assert child.parent is not None and child.parent.uuid == child.layers()[1].uuid
    finally:
        raw.close()
        child.close()


def test_what_a_backend_cannot_make_is_refused(tmp_path):
    create_store(tmp_path / "base.vhd", 4 * MiB)
    with pytest.raises(FormatError, match="layer over"):
        create_store(tmp_path / "r.img", parent=tmp_path / "base.vhd")
    with pytest.raises(FormatError, match="size is needed"):
        create_store(tmp_path / "x.vhd")
    with pytest.raises(StoreError, match="no store backend"):
        open_store(tmp_path / "base.vhd", backend="nbd")


def test_a_scheme_names_its_backend(tmp_path):
    RawStore.create(tmp_path / "pool-image", 4 * MiB).close()
    registry.register(Backend("pool", lambda locator, readonly: RawStore(tmp_path / f"pool-{locator}", readonly=readonly),
                              lambda locator, size: None, scheme="pool"))
    try:
        store = open_store("pool:image", readonly=True)
        assert store.size == 4 * MiB
        store.close()
    finally:
        registry._BACKENDS.pop("pool")


def test_a_raw_store_is_one_whole_layer(tmp_path):
    store = RawStore.create(tmp_path / "r.img", 4 * MiB)
    try:
        store.write(MiB, b"x" * 4096)
        assert store.layers() == [store] and store.parent is None and store.uuid is None
        assert store.held_bytes() == 4 * MiB
        assert store.own_runs(0, 4 * MiB) == list(store.extents(0, 4 * MiB))
    finally:
        store.close()
