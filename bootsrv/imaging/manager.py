"""The golden-image lifecycle on a running appliance: a maintenance client edits a layer
over the current version, commit makes it the next version, revert picks another one,
clients follow at their next power-on or at `client reset`, prune drops what nobody uses.

Every step that changes what a client boots writes one record (versions.py) after the
files it names exist and before the files it drops are removed, so a kill -9 anywhere
leaves the old state or the new one; `recover` removes what a killed step left behind.
Operations run on worker threads (the admin API's), one at a time per image.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bootsrv.clients import BootClient
from bootsrv.config import Config
from bootsrv.config.modes import ImageUpdate
from bootsrv.imaging import rbdlayers, versions
from bootsrv.imaging.versions import Edit, ImageRecord, Version
from bootsrv.runtime.inventory import Inventory
from snapshots.engine import SnapshotEngine, SnapshotError, fresh_path
from snapshots.faults import crash_point
from snapshots.files import fsync_dir
from target.stores.errors import StoreError
from target.stores.copy import copy_content
from target.stores.meter import NO_METER, Meter
from target.stores.gate import GatedStore
from target.stores.rbd import is_rbd
from target.stores.registry import open_store
from target.stores.vhd import open_vhd, read_footer
from target.stores.vhd.chain import parent_uuid
from target.stores.vhd.create import create_differencing, create_dynamic
from target.stores.vhd.store import MAX_CHAIN

log = logging.getLogger("bootsrv.images")
MAX_VERSION_DEPTH = 32  # versions deep at most: a client's chain needs room for its snapshots too


class ImageError(ValueError):
    """One line for the admin: what cannot be done to an image and why."""


def iso_problem(path: Path) -> str:
    """Why `path` is not an ISO 9660 image an installer can boot from, or ""."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0x8001)  # the primary volume descriptor's "CD001", at sector 16 (2 KiB sectors)
            if handle.read(5) != b"CD001":
                return "not an ISO 9660 image (no CD001 volume descriptor at sector 16)"
    except OSError as exc:
        return exc.strerror or str(exc)
    return ""


@dataclass
class ImageManager:
    inventory: Inventory
    engine: SnapshotEngine
    edits: dict[str, GatedStore] = field(default_factory=dict)  # image -> its open edit layer
    # Which version each client's RBD clone is made of, and each RBD image's current size: asked
    # of the cluster on workers (at start, at a reset, at a new version), read on the event loop
    # by status and the dashboard. A clone's parent changes only when this process remakes it.
    _rbd_versions: dict[str, int | None] = field(default_factory=dict)
    _rbd_sizes: dict[str, int] = field(default_factory=dict)
    _records: dict[str, ImageRecord] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def config(self) -> Config:
        return self.inventory.config

    @property
    def state_dir(self) -> Path:
        return self.config.server.state_dir

    # ---- what is recorded ----------------------------------------------------------------

    def record(self, image: str) -> ImageRecord:
        configured = next((i for i in self.config.images if i.name == image), None)
        if configured is None:
            known = ", ".join(i.name for i in self.config.images) or "none"
            raise ImageError(f"no [[image]] named {image!r} (images: {known})")
        with self._lock:
            if image not in self._records:
                self._records[image] = versions.load(self.state_dir, image, configured.path)
            return self._records[image]

    def _save(self, record: ImageRecord) -> ImageRecord:
        saved = self._records[record.name] = versions.save(self.state_dir, record)
        if is_rbd(saved.current_version.file):  # the current version may be another (on a worker here)
            self._rbd_sizes[record.name] = rbdlayers.size_of(saved.current_version.file)
        return saved

    def _first_save(self, record: ImageRecord) -> ImageRecord:
        """Version 1 described (its sha256: read in full once) before anything is built on it."""
        if record.saved:
            return record
        first = record.versions[0]
        if is_rbd(first.file):  # version 1 is a protected snapshot of the configured image
            described = rbdlayers.take_version(first.file, 1, None, first.label)
        else:
            described = versions.describe(Path(first.file), 1, None, first.label)
        return replace(record, versions=(described, *record.versions[1:]))

    def current_file(self, image: str) -> Path:
        """What a client of the image starts from: its current version's file (on RBD, its
        snapshot: version 1's is taken on first use)."""
        with self._lock:
            record = self.record(image)
            if not record.saved and is_rbd(record.versions[0].file):
                record = self._save(self._first_save(record))
            if is_rbd(record.current_version.file) and image not in self._rbd_sizes:
                self._rbd_sizes[image] = rbdlayers.size_of(record.current_version.file)
            return Path(record.current_version.file)

    def size_of(self, image: str) -> int | None:
        """An RBD image's current size as last asked (None: not on RBD, or not asked yet)."""
        return self._rbd_sizes.get(image)

    def base_for(self, client: BootClient) -> Path:
        return self.current_file(client.config.image)

    def version_of(self, client: BootClient) -> int | None:
        """The version a client's disk is built on, read from its files: the parent chain
        through its snapshots down to a version's UUID (None: not one of the versions)."""
        record = self.record(client.config.image)
        if is_rbd(client.disk_path):
            if client.name not in self._rbd_versions:
                self._rbd_versions[client.name] = rbdlayers.version_below(client.disk_path, record)
            return self._rbd_versions[client.name]
        by_uuid = record.by_uuid()
        snapshots = {s.uuid: s.file for s in self.engine.catalog.snapshots(client.name) if s.uuid}
        return self._version_below(client.disk_path, by_uuid, snapshots)

    def disk_remade(self, client: str) -> None:
        """The client's disk was made (again): which version it is on is asked of the cluster
        now, on this worker, so that status never has to on the event loop."""
        self._rbd_versions.pop(client, None)
        found = self.inventory.clients.get(client)
        if found is not None and is_rbd(found.disk_path):
            self.version_of(found)

    def learn_rbd_clients(self) -> None:
        """At start (before the event loop serves): each RBD client's version, asked once."""
        for name in list(self.inventory.clients):
            self.disk_remade(name)

    @staticmethod
    def _version_below(path: Path, by_uuid: dict[str, Version], snapshots: dict[str, str]) -> int | None:
        current: str | os.PathLike[str] = path
        for _ in range(MAX_CHAIN):
            try:
                uuid = parent_uuid(current)
            except (OSError, StoreError):
                return None
            if uuid is None:
                return None
            if uuid.hex() in by_uuid:
                return by_uuid[uuid.hex()].number
            if uuid.hex() not in snapshots:
                return None
            current = snapshots[uuid.hex()]
        return None

    def editing(self, client: str) -> ImageRecord | None:
        """The image `client` is the maintenance client of, if any."""
        for image in self.config.images:
            record = self.record(image.name)
            if record.edit is not None and record.edit.client == client:
                return record
        return None

    # ---- at start ------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Before clients are served: remove what killed steps left, forget an edit whose
        layer is gone. Returns what was done."""
        done: list[str] = []
        for image in self.config.images:
            record = self.record(image.name)
            if is_rbd(image.path):
                done += self._recover_rbd(image.name)
                continue
            if record.edit is not None and not Path(record.edit.file).exists():
                self._save(replace(record, edit=None))
                done.append(f"image {image.name}: the edit by {record.edit.client} had no layer any more: forgotten")
                record = self.record(image.name)
            for stray in versions.strays(self.state_dir, record):
                stray.unlink()
                done.append(f"image {image.name}: removed {stray.name} (a step that did not finish)")
            for version in record.versions[1:]:  # a commit killed before it made its file read-only
                if Path(version.file).exists() and os.stat(version.file).st_mode & 0o222:
                    os.chmod(version.file, 0o444)
            if done:
                fsync_dir(versions.folder(self.state_dir, image.name))
        for line in done:
            log.warning("recovery: %s", line)
        return done

    def _recover_rbd(self, image: str) -> list[str]:
        done: list[str] = []
        record = self.record(image)
        if record.edit is not None and not rbdlayers.exists(record.edit.file):
            self._save(replace(record, edit=None))
            done.append(f"image {image}: the edit by {record.edit.client} had no layer any more: forgotten")
            record = self.record(image)
        configured = self.config.image(image).path
        for stray in rbdlayers.strays(configured, record):
            rbdlayers.drop_head(stray)
            done.append(f"image {image}: removed {stray} (a step that did not finish)")
        return done

    def serve_booted_edits(self) -> None:
        """A maintenance client that had booted into its edit keeps it across a restart."""
        for image in self.config.images:
            edit = self.record(image.name).edit
            if edit is not None and edit.booted and edit.client in self.inventory.units:
                try:
                    self._serve_edit(image.name, edit)
                except StoreError as exc:  # the other clients are served all the same
                    log.error("image %s: cannot serve the edit layer %s to %s: %s; it boots its own disk "
                              "(image discard %s drops the edit)", image.name, edit.file, edit.client, exc, image.name)

    def _serve_edit(self, image: str, edit: Edit) -> None:
        gate = self.edits.get(image)
        if gate is None:
            gate = self.edits[image] = GatedStore(open_store(edit.file))
        self.inventory.serve_layer(edit.client, gate)

    # ---- a client powers on (from bootsrv.runtime.boot, on a worker) ------------------------

    def boot_edit(self, client: str) -> ImageRecord | None:
        """A maintenance client in its firmware: from now on its target serves the edit layer
        (its sessions were dropped). None when it is no maintenance client."""
        with self._lock:
            record = self.editing(client)
            if record is None or record.edit is None:
                return None
            if not record.edit.booted:
                record = self._save(replace(record, edit=replace(record.edit, booted=True)))
            self._serve_edit(record.name, record.edit)  # type: ignore[arg-type]
            return record

    def resets_at_boot(self, client: BootClient) -> bool:
        """reset_on_boot, or on_image_update = "reset" for a client behind its image."""
        if client.config.reset_on_boot:
            return True
        if client.config.on_image_update != ImageUpdate.RESET:
            return False
        return self.version_of(client) != self.record(client.config.image).current

    # ---- edit, commit, discard ----------------------------------------------------------------

    def install(self, image: str, client: str, iso: str) -> dict[str, Any]:
        """As edit, but the client's next boots start the installer on `iso` (served read-only
        over the boot HTTP), with the edit layer attached as its hard disk."""
        path = Path(iso).resolve()
        problem = iso_problem(path)
        if problem:
            raise ImageError(f"{iso}: {problem}")
        return self.edit(image, client, iso=str(path))

    def installing(self, client: str) -> ImageRecord | None:
        record = self.editing(client)
        return record if record is not None and record.edit is not None and record.edit.iso else None

    def install_iso(self, url_path: str) -> Path | None:
        """The installer ISO a boot HTTP path names: /install/<image>.iso while that image
        has an install recorded (nothing else is ever served)."""
        name = url_path.removeprefix("/install/").removesuffix(".iso")
        if url_path != f"/install/{name}.iso" or name not in {i.name for i in self.config.images}:
            return None
        edit = self.record(name).edit
        return Path(edit.iso) if edit is not None and edit.iso else None

    def install_script(self, client: BootClient, server_ip: str, iscsi_port: int, http_port: int) -> bytes:
        """iPXE: attach the client's disk (its target serves the edit layer; iPXE describes it
        in the iBFT, where the installer finds it), then boot the ISO over HTTP."""
        record = self.installing(client.name)
        assert record is not None
        chap = client.config.chap
        credentials = f"set username {chap.user}\nset password {chap.secret}\n" if chap else ""
        # 0x81: 0x80 is the hooked disk's (iPXE refuses a second device there). On failure
        # the machine stays in iPXE's shell, saying why: falling through to the BIOS would
        # boot the half-installed disk.
        return (f"#!ipxe\nset initiator-iqn {client.initiator_iqn}\n{credentials}"
                f"sanhook --drive 0x80 {client.root_path(server_ip, iscsi_port)} || goto failed\n"
                f"sanboot --drive 0x81 http://{server_ip}:{http_port}/install/{record.name}.iso || goto failed\n"
                f":failed\necho bootsrv: the installer of image {record.name} did not start: ${{errno}}\n"
                f"shell\n").encode()

    def edit(self, image: str, client: str, iso: str = "") -> dict[str, Any]:
        if client not in self.inventory.clients:
            raise ImageError(f"no client named {client!r}")
        with self._lock:
            record = self.record(image)
            if record.edit is not None:
                raise ImageError(f"image {image!r} is already being edited by {record.edit.client} "
                                 f"(commit or discard that first)")
            other = self.editing(client)
            if other is not None:
                raise ImageError(f"{client} is already editing image {other.name!r}")
            if len(record.chain(record.current)) >= MAX_VERSION_DEPTH:
                raise ImageError(f"version {record.current} of {image!r} is {MAX_VERSION_DEPTH} versions deep: "
                                 f"image flatten {image} first (then prune once clients have moved)")
            record = self._first_save(record)
            if is_rbd(record.current_version.file):  # a clone named for the version it becomes
                layer = rbdlayers.new_layer(self.config.image(image).path, record.next_number(),
                                            record.current_version.file)
            else:
                layer = str(self._new_edit_file(image, record.current_version.file))
            crash_point("image.edit.created")
            record = self._save(replace(record, edit=Edit(client, record.current, layer, time.time(), iso=iso)))
        log.info("image %s: %s %s a layer over version %d from its next power-on", image, client,
                 f"installs {Path(iso).name} onto" if iso else "edits", record.current)
        return record.as_dict()

    def _new_edit_file(self, image: str, base: str) -> Path:
        layer = versions.edit_path(self.state_dir, image)
        layer.parent.mkdir(parents=True, exist_ok=True)
        fresh = fresh_path(layer)
        fresh.unlink(missing_ok=True)
        create_differencing(fresh, base)
        os.replace(fresh, layer)
        fsync_dir(layer.parent)
        return layer

    def _end_edit(self, record: ImageRecord, force: bool, what: str) -> None:
        """The maintenance client stops using the layer: refused while it is logged in,
        unless forced (the layer is flushed, then its sessions are dropped)."""
        edit = record.edit
        assert edit is not None
        gate = self.edits.get(record.name)
        volume = self.engine.volumes.get(edit.client)
        sessions = volume.sessions() if volume is not None else 0
        if gate is not None and sessions:
            if not force:
                raise ImageError(f"{edit.client} is logged in ({sessions} session(s)) on the edit of {record.name!r}: "
                                 f"shut it down first, or {what} with --force (its sessions are dropped)")
            with gate.hold() as store:
                store.flush()
            volume.drop_sessions()  # type: ignore[union-attr]
        if gate is not None:
            self.inventory.serve_layer(edit.client, None)
            with gate.hold() as store:
                store.flush()
            gate.close()
            del self.edits[record.name]

    def _edit_of(self, image: str, force: bool, verb: str) -> tuple[ImageRecord, Edit]:
        """The image's edit, its maintenance client no longer on it (see _end_edit)."""
        record = self.record(image)
        if record.edit is None:
            raise ImageError(f"image {image!r} has no edit to {verb} (image edit {image} --client NAME)")
        self._end_edit(record, force, verb)
        return record, record.edit

    def commit(self, image: str, label: str = "", force: bool = False) -> dict[str, Any]:
        with self._lock:
            record, edit = self._edit_of(image, force, "commit")
            if is_rbd(edit.file):
                return self._commit_rbd(record, edit, label)
            number = record.next_number()
            final = versions.version_path(self.state_dir, image, number)
            final.unlink(missing_ok=True)  # a stray of an earlier commit that was killed
            os.link(edit.file, final)
            fsync_dir(final.parent)
            crash_point("image.commit.linked")
            own = self.engine.layer_bytes(final)
            version = versions.describe(final, number, edit.base, label, own)
            record = self._save(replace(record, versions=(*record.versions, version), current=number, edit=None))
            crash_point("image.commit.recorded")
            Path(edit.file).unlink()
            os.chmod(final, 0o444)  # committed: never written again
            fsync_dir(final.parent)
        log.info("image %s: version %d committed (%s, %d bytes over version %d, by %s)", image, number,
                 label or "no label", own, edit.base, edit.client)
        return record.as_dict()

    def _commit_rbd(self, record: ImageRecord, edit: Edit, label: str) -> dict[str, Any]:
        """Snapshot the edit's clone (named for this version already), then record it."""
        number = rbdlayers.number_of(edit.file)
        crash_point("image.commit.linked")
        version = rbdlayers.take_version(edit.file, number, edit.base, label)
        record = self._save(replace(record, versions=(*record.versions, version), current=number, edit=None))
        crash_point("image.commit.recorded")
        log.info("image %s: version %d committed (%s, %d bytes over version %d, by %s)", record.name, number,
                 label or "no label", version.bytes, edit.base, edit.client)
        return record.as_dict()

    def discard(self, image: str, force: bool = False) -> dict[str, Any]:
        with self._lock:
            record, edit = self._edit_of(image, force, "discard")
            record = self._save(replace(record, edit=None))
            if is_rbd(edit.file):
                rbdlayers.drop_head(edit.file)
            else:
                Path(edit.file).unlink(missing_ok=True)
                fsync_dir(Path(edit.file).parent)
        log.info("image %s: the edit by %s discarded", image, edit.client)
        return record.as_dict()

    def extend(self, image: str, size: int) -> dict[str, Any]:
        """A larger image is a new version: an empty layer of `size` over the current one
        (past the old end it reads zeros), current at once. No committed file is written;
        clients follow as they follow any new version (a persistent client's own disk grows
        with `disk extend` on its file, online)."""
        with self._lock:
            record = self._first_save(self.record(image))
            if record.edit is not None:
                raise ImageError(f"image {image!r} is being edited by {record.edit.client}: "
                                 "commit or discard that first")
            base = Path(record.current_version.file)
            old = rbdlayers.size_of(base) if is_rbd(base) else read_footer(base).virtual_size
            if size <= old:
                raise ImageError(f"image {image!r} is {old} bytes: extend means a larger size, not {size}")
            number = record.next_number()
            if is_rbd(base):
                layer = rbdlayers.new_layer(self.config.image(image).path, number, str(base), size=size)
                crash_point("image.extend.created")
                version = rbdlayers.take_version(layer, number, record.current, f"extended to {size} bytes")
                record = self._save(replace(record, versions=(*record.versions, version), current=number))
                log.info("image %s: version %d is version %d extended to %d bytes", image, number,
                         version.parent, size)
                return record.as_dict()
            final = versions.version_path(self.state_dir, image, number)
            final.parent.mkdir(parents=True, exist_ok=True)
            final.unlink(missing_ok=True)
            create_differencing(final, base, size=size)
            fsync_dir(final.parent)
            crash_point("image.extend.created")
            version = versions.describe(final, number, record.current, f"extended to {size} bytes", 0)
            record = self._save(replace(record, versions=(*record.versions, version), current=number))
            os.chmod(final, 0o444)
        log.info("image %s: version %d is version %d extended to %d bytes", image, number, version.parent, size)
        return record.as_dict()

    def flatten(self, image: str, label: str = "", progress: Meter = NO_METER) -> dict[str, Any]:
        """The current version's whole content as a new version that stands alone (a dynamic
        VHD, no parent): chains start short again, and once clients have moved onto it,
        prune deletes the chain it replaced. Costs the space of one full copy."""
        with self._lock:
            record = self._first_save(self.record(image))
            number = record.next_number()
            if is_rbd(record.current_version.file):
                return self._flatten_rbd(record, number, label)
            final = versions.version_path(self.state_dir, image, number)
            fresh = fresh_path(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            fresh.unlink(missing_ok=True)
            source = open_vhd(record.current_version.file, readonly=True)
            try:
                create_dynamic(fresh, source.size)
                target = open_vhd(fresh)
                try:
                    copy_content(source, target, between=self.engine.check_stopping, progress=progress)
                finally:
                    target.close()
            finally:
                source.close()
            os.replace(fresh, final)
            fsync_dir(final.parent)
            crash_point("image.flatten.written")
            base = record.current
            version = versions.describe(final, number, None, label or f"version {base} flattened")
            record = self._save(replace(record, versions=(*record.versions, version), current=number))
            os.chmod(final, 0o444)
        log.info("image %s: version %d is version %d flattened (%d bytes, no parent)", image, number, base,
                 version.bytes)
        return record.as_dict()

    def _flatten_rbd(self, record: ImageRecord, number: int, label: str) -> dict[str, Any]:
        """A clone of the current version with its parents' data copied in (librbd's flatten)."""
        if record.edit is not None:  # its clone is named for the number this version would take
            raise ImageError(f"image {record.name!r} is being edited by {record.edit.client}: "
                             "commit or discard that first")
        base = record.current
        layer = rbdlayers.new_layer(self.config.image(record.name).path, number, record.current_version.file,
                                    flatten=True)
        crash_point("image.flatten.written")
        version = rbdlayers.take_version(layer, number, None, label or f"version {base} flattened")
        record = self._save(replace(record, versions=(*record.versions, version), current=number))
        log.info("image %s: version %d is version %d flattened (%d bytes, no parent)", record.name, number, base,
                 version.bytes)
        return record.as_dict()

    # ---- revert, prune ----------------------------------------------------------------------

    def revert(self, image: str, to: int) -> dict[str, Any]:
        with self._lock:
            record = self.record(image)
            record.version(to)  # it exists
            if record.edit is not None:
                raise ImageError(f"image {image!r} is being edited by {record.edit.client}: "
                                 "commit or discard that first")
            record = self._save(replace(self._first_save(record), current=to))
            crash_point("image.revert.recorded")
        log.info("image %s: version %d is current again", image, to)
        return record.as_dict()

    def in_use(self, image: str) -> set[int]:
        """Versions a client disk, a snapshot or the edit is built on, with what they are built on."""
        record = self.record(image)
        by_uuid = record.by_uuid()
        used = {record.current}
        if record.edit is not None:
            used.add(record.edit.base)
        for client in self.inventory.clients.values():
            if client.config.image != image:
                continue
            if is_rbd(client.disk_path):  # its snapshots are of the same clone: the same parent
                number = self.version_of(client)
                if number is not None:
                    used.add(number)
                continue
            snapshots = {s.uuid: s.file for s in self.engine.catalog.snapshots(client.name) if s.uuid}
            for path in (client.disk_path, *map(Path, snapshots.values())):
                number = self._version_below(path, by_uuid, snapshots)
                if number is not None:
                    used.add(number)
        return {v.number for n in used for v in record.chain(n)}

    def prune(self, image: str) -> dict[str, Any]:
        """Versions nothing is built on any more are deleted (version 1, the configured file, stays)."""
        with self._lock:
            record = self.record(image)
            keep = self.in_use(image) | {1}
            gone = [v for v in record.versions if v.number not in keep]
            if gone:
                record = self._save(replace(record, versions=tuple(v for v in record.versions if v.number in keep)))
                crash_point("image.prune.recorded")
                for version in gone:
                    if is_rbd(version.file):
                        rbdlayers.drop_version(self.config.image(image).path, version)
                    else:
                        Path(version.file).unlink(missing_ok=True)
                if versions.folder(self.state_dir, image).is_dir():
                    fsync_dir(versions.folder(self.state_dir, image))
        log.info("image %s: pruned version(s) %s", image, ", ".join(str(v.number) for v in gone) or "none")
        return {**record.as_dict(), "pruned": [v.number for v in gone]}

    # ---- a client moves to the current version ----------------------------------------------

    def reset_client(self, name: str, force: bool = False) -> dict[str, Any]:
        client = self.inventory.clients.get(name)
        if client is None:
            raise ImageError(f"no client named {name!r}")
        if self.editing(name) is not None:
            raise ImageError(f"{name} is the maintenance client of image {self.editing(name).name!r}: "  # type: ignore[union-attr]
                             "commit or discard its edit first")
        volume = self.engine.volume(name)
        with self.engine.lock(name):
            sessions = volume.sessions()
            if sessions and not force:
                raise SnapshotError(f"{name} is logged in ({sessions} session(s)): shut it down first, "
                                    "or add --force to drop its sessions")
            if sessions:
                volume.drop_sessions()
            before = self.version_of(client)
            base = self.base_for(client)
            self.engine.start_over(name, base, "client.reset.child")
            self.disk_remade(name)
        number = self.record(client.config.image).current
        log.warning("client %s reset: its changes discarded, it starts from version %d of %s (was on %s)",
                    name, number, client.config.image, before if before is not None else "an unknown base")
        return {"client": name, "image": client.config.image, "version": number, "was": before}

    def close(self) -> None:
        """At shutdown: edit layers flushed and closed (the edits stay recorded)."""
        for image, gate in list(self.edits.items()):
            try:
                gate.flush()
            except StoreError as exc:
                log.error("flushing the edit of image %s at shutdown: %s", image, exc)
            gate.close()
        self.edits.clear()

    # ---- for status, the dashboard and the API ----------------------------------------------

    def overview(self) -> list[dict[str, Any]]:
        rows = []
        for image in self.config.images:
            record = self.record(image.name)
            on: dict[int, list[str]] = {}
            for client in self.inventory.clients.values():
                if client.config.image == image.name:
                    on.setdefault(self.version_of(client) or 0, []).append(client.name)
            rows.append({**record.as_dict(),
                         "versions": [{**v, "current": v["number"] == record.current,
                                       "clients": sorted(on.get(v["number"], []))}
                                      for v in record.as_dict()["versions"]],
                         "clients_elsewhere": sorted(on.get(0, []))})
        return rows
