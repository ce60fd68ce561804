"""The catalog's snapshot states: an enum in code, the same strings on disk."""

import sqlite3

from snapshots.catalog import Catalog, SnapshotState, vhd_files


def test_states_are_stored_as_the_strings_existing_catalogs_hold(tmp_path):
    path = tmp_path / "catalog.db"
    catalog = Catalog(path)
    snap = catalog.begin_snapshot("d", "", "manual", vhd_files(tmp_path))
    assert snap.state is SnapshotState.CREATING
    catalog.update(snap.id, state=SnapshotState.READY)
    catalog.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT state, typeof(state) FROM snapshots").fetchall() == [("ready", "text")]
        # A row as an older bootsrv wrote it reads back as the enum.
        db.execute("INSERT INTO snapshots (disk, created, origin, state) VALUES ('d', 0, 'manual', 'deleting')")
    catalog = Catalog(path)
    states = [s.state for s in catalog.snapshots("d")]
    assert states == [SnapshotState.READY, SnapshotState.DELETING] and states == ["ready", "deleting"]
    assert catalog.snapshots("d")[0].as_dict()["state"] == "ready"
    catalog.close()
