"""The snapshot catalog: SQLite under state_dir.

It records what the files cannot say (labels, origins, exports, schedule runs)
and which operation was under way when the process stopped. Which layer is a
snapshot's parent is read from the VHD files themselves, never stored twice.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Callable

from snapshots.faults import crash_point

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    disk TEXT NOT NULL,
    created REAL NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    origin TEXT NOT NULL,
    file TEXT NOT NULL DEFAULT '',
    uuid TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,
    unique_bytes INTEGER NOT NULL DEFAULT 0,
    pause_ms REAL NOT NULL DEFAULT 0,
    mount_iscsi INTEGER NOT NULL DEFAULT 0,
    mount_local TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS exports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshot INTEGER NOT NULL,
    disk TEXT NOT NULL,
    created REAL NOT NULL,
    path TEXT NOT NULL,
    format TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    base TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS partial_files (
    path TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS schedule_runs (
    name TEXT PRIMARY KEY,
    last_fire REAL NOT NULL,
    finished REAL NOT NULL DEFAULT 0,
    result TEXT NOT NULL DEFAULT ''
);
"""


class SnapshotState(StrEnum):
    """Where a snapshot is in its life. The values are what the catalog stores on
    disk (existing catalogs read back as they are): never change them."""
    CREATING = "creating"  # begun; recovery finishes it if the switch happened, else undoes it
    READY = "ready"
    DELETING = "deleting"  # being merged into its children (RBD: removed); recovery finishes it
    ROLLING_BACK = "rolling-back"  # RBD: the image is being rolled back to it; recovery does it again


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: int
    disk: str
    created: float
    label: str
    origin: str  # "manual" or "schedule:NAME"
    file: str  # the frozen VHD layer, or the RBD snapshot as rbd:POOL/IMAGE@SNAP
    uuid: str  # the frozen layer's VHD UUID (hex); "" on RBD
    state: SnapshotState
    unique_bytes: int
    pause_ms: float
    mount_iscsi: bool
    mount_local: str

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Export:
    id: int
    snapshot: int
    disk: str
    created: float
    path: str
    format: str
    sha256: str
    base: str  # the export this one builds on ("" for a full export)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


class Catalog:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, *args: Any) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # ---- snapshots ------------------------------------------------------------

    def begin_snapshot(self, disk: str, label: str, origin: str, file_of: Callable[[int, float], str]) -> Snapshot:
        """A CREATING record, its file (`file_of(id, created)`) named before anything is made."""
        # One transaction: a row committed without its file name (a crash between the
        # two statements) once made recovery read the folder '.' as a snapshot file.
        created = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(
                    "INSERT INTO snapshots (disk, created, label, origin, state) VALUES (?, ?, ?, ?, ?)",
                    (disk, created, label, origin, SnapshotState.CREATING))
                snap_id = int(cursor.lastrowid or 0)
                crash_point("snapshot.create.recorded")
                self._db.execute("UPDATE snapshots SET file = ? WHERE id = ?", (file_of(snap_id, created), snap_id))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        found = self.get(snap_id)
        assert found is not None
        return found

    def update(self, snap_id: int, **fields: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        self._run(f"UPDATE snapshots SET {columns} WHERE id = ?", *fields.values(), snap_id)

    def remove(self, snap_id: int) -> None:
        self._run("DELETE FROM snapshots WHERE id = ?", snap_id)

    def get(self, snap_id: int) -> Snapshot | None:
        row = self._run("SELECT * FROM snapshots WHERE id = ?", snap_id).fetchone()
        return _snapshot(row) if row else None

    def snapshots(self, disk: str | None = None) -> list[Snapshot]:
        if disk is None:
            rows = self._run("SELECT * FROM snapshots ORDER BY id").fetchall()
        else:
            rows = self._run("SELECT * FROM snapshots WHERE disk = ? ORDER BY id", disk).fetchall()
        return [_snapshot(row) for row in rows]

    # ---- exports ----------------------------------------------------------------

    def add_export(self, snapshot: int, disk: str, path: str, fmt: str, sha256: str, base: str) -> Export:
        created = time.time()
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO exports (snapshot, disk, created, path, format, sha256, base) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (snapshot, disk, created, path, fmt, sha256, base))
        return Export(int(cursor.lastrowid or 0), snapshot, disk, created, path, fmt, sha256, base)

    def exports(self, snapshot: int | None = None, disk: str | None = None) -> list[Export]:
        rows = self._run("SELECT * FROM exports ORDER BY id").fetchall()
        found = [Export(*row) for row in rows]
        return [e for e in found if (snapshot is None or e.snapshot == snapshot) and (disk is None or e.disk == disk)]

    # ---- files being written (removed by recovery if the process died) ---------

    def partial_begin(self, path: Path) -> None:
        self._run("INSERT OR REPLACE INTO partial_files (path) VALUES (?)", str(path))

    def partial_end(self, path: Path) -> None:
        self._run("DELETE FROM partial_files WHERE path = ?", str(path))

    def partials(self) -> list[Path]:
        return [Path(row[0]) for row in self._run("SELECT path FROM partial_files").fetchall()]

    # ---- schedules ------------------------------------------------------------------

    def schedule_run(self, name: str) -> tuple[float, float, str] | None:
        row = self._run("SELECT last_fire, finished, result FROM schedule_runs WHERE name = ?", name).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def record_schedule_run(self, name: str, fire: float, finished: float = 0.0, result: str = "") -> None:
        self._run("INSERT OR REPLACE INTO schedule_runs (name, last_fire, finished, result) VALUES (?, ?, ?, ?)",
                  name, fire, finished, result)


def vhd_files(folder: Path) -> Callable[[int, float], str]:
    """How a VHD disk's snapshot files are named: N.vhd in the disk's snapshot folder."""
    return lambda snap_id, _: str(folder / f"{snap_id}.vhd")


def _snapshot(row: tuple[Any, ...]) -> Snapshot:
    (snap_id, disk, created, label, origin, file, uuid, state, unique, pause, iscsi, local) = row
    return Snapshot(snap_id, disk, created, label, origin, file, uuid, SnapshotState(state), unique, pause,
                    bool(iscsi), local)
