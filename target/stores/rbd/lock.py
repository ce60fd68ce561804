"""One writer per RBD image across bootsrv nodes: RBD's exclusive lock, taken explicitly when a
node starts serving the image to an initiator and released when its last session ends.

Every node opens every configured image at start, so the lock is not taken at open. librbd's
own exclusive lock is cooperative (the owner hands it over on request): two nodes would take
turns writing. `lock_acquire` switches the image to librbd's standard policy: the owner then
refuses requests (EROFS), so a second node gets a refusal and never writes, and after a
release every write on an image this node does not hold fails at once (EROFS) rather than
asking for the lock.

A dead owner is found and fenced by librbd inside `lock_acquire`: the lock's cookie names the
owner's watch on the image header; while that watch lives (the owner answers the OSDs' pings),
the owner is asked and refuses; once the watch has expired (osd_client_watch_timeout, 30 s by
default, after the owner stopped answering: killed, frozen, cut off), librbd blocklists the
owner's Ceph client (rbd_blocklist_on_break_lock) and only then breaks the lock and takes it.
A blocklisted process can no longer write anything: a frozen node that wakes up finds every
write refused (ESHUTDOWN), so no acknowledged write of the new owner is overwritten. bootsrv
does not break locks itself: librbd's check (no watch) is the one that never breaks a live
owner, and doing it here would only race it.

Who holds an image is recorded in its metadata when the lock is taken (`bootsrv.node`, the
node's name; `bootsrv.portals`, its iSCSI portals), so `status` names the node and not only its
Ceph address, and a login to another node is redirected there (Refused.moved_to).

The schedules' leader (`Leadership`) is a RADOS lock with a lease on one object of the pool.
These calls wait on the network: worker threads only.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from target.stores.errors import StoreError
from target.stores.rbd import node as nodes
from target.stores.rbd.cluster import reason, settings
from target.stores.rbd.images import ioctx
from target.stores.rbd.node import my_address

log = logging.getLogger("bootsrv.rbd")

NODE_KEY = "bootsrv.node"  # image metadata: the name of the node holding the lock
PORTALS_KEY = "bootsrv.portals"  # and its iSCSI portals, where other nodes send initiators
WILDCARDS = ("0.0.0.0", "[::]", "::", "")


class Refused(StoreError):
    """Another node serves the image (or this node was fenced): a login here is refused, or sent
    to `moved_to`, a portal of the node that serves it."""

    def __init__(self, message: str, moved_to: str = "") -> None:
        super().__init__(message)
        self.moved_to = moved_to


@dataclass(frozen=True, slots=True)
class Owner:
    address: str  # the owner's Ceph client address (what a blocklist names)
    node: str  # its bootsrv node name, from the image metadata ("" if unknown)
    portals: tuple[str, ...] = ()  # its iSCSI portals that initiators can reach (host:port)

    def describe(self) -> str:
        return f"node {self.node or '(unknown)'} (Ceph client {self.address})"


def owner_of(image: Any) -> Owner | None:
    """Who holds the image's exclusive lock now (any client, this one included)."""
    import rbd
    owners = list(image.lock_get_owners())
    if not owners:
        return None
    recorded = {}
    for key in (NODE_KEY, PORTALS_KEY):
        try:
            recorded[key] = image.metadata_get(key)
        except (KeyError, rbd.Error):
            recorded[key] = ""
    portals = tuple(p for p in recorded[PORTALS_KEY].split(",") if p)
    return Owner(owners[0]["owner"], recorded[NODE_KEY], portals)


class DiskClaim:
    """The sessions of this node that serve one image, and the exclusive lock they serve it by.

    `claim(holder)` takes the lock when the first holder comes (waiting while librbd fences a
    dead owner) and `release(holder)` gives it back when the last one goes. Holders are opaque
    strings (one per iSCSI session). One claim per image and process, kept across a close and
    reopen of the image (a parked or grown disk): the reopened image takes the lock again."""

    _all: dict[str, "DiskClaim"] = {}
    _all_guard = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path  # rbd:POOL/IMAGE, for messages
        self._image: Any = None
        self._holders: set[str] = set()
        self._mutex = threading.Lock()  # one claim or release at a time: lock calls are not reentrant
        self._held = False

    @classmethod
    def attach(cls, path: str, image: Any) -> "DiskClaim":
        """The claim of `path`, now served through `image` (just opened)."""
        with cls._all_guard:
            claim = cls._all.setdefault(path, cls(path))
        with claim._mutex:
            claim._image, claim._held = image, False
            if claim._holders:  # reopened while sessions use it: theirs again before any I/O
                try:
                    claim._acquire()
                except StoreError as exc:
                    log.error("%s reopened: %s", path, exc)
        return claim

    def detach(self, image: Any) -> None:
        """`image` is being closed (closing it gives the lock back)."""
        with self._mutex:
            if self._image is image:
                self._image = None

    @property
    def holders(self) -> int:
        return len(self._holders)

    def claim(self, holder: str) -> None:
        """Serve the image for `holder`; raises Refused when another node holds it."""
        with self._mutex:
            if not (self._holders and self._owned()):
                self._acquire()
            self._holders.add(holder)

    def _acquire(self) -> None:
        import rbd
        if self._image is None:
            raise StoreError(f"{self.path} is closed")
        try:
            if not self._image.features() & rbd.RBD_FEATURE_EXCLUSIVE_LOCK:
                raise Refused(f"{self.path} has no exclusive-lock feature, so nothing keeps a second node from "
                              f"writing it: rbd feature enable {self.path[4:]} exclusive-lock")
            before = self._look()
        except rbd.Error as exc:
            raise self._failed("look at its lock", exc) from None
        if before is not None and before.address != my_address():
            log.warning("%s is held by %s: asking it; if its watch has expired (it stopped answering), "
                        "librbd blocklists it and takes the lock over", self.path, before.describe())
        started = time.monotonic()
        try:
            self._image.lock_acquire(rbd.RBD_LOCK_MODE_EXCLUSIVE)
        except rbd.ReadOnlyImage:  # the owner answered: it is alive and keeps the lock
            now = self._look()
            mine = nodes.node().portals
            there = next((p for p in (now.portals if now else ()) if p not in mine), "")
            raise Refused(f"{self.path} is served by {now.describe() if now else 'another node'}: "
                          f"one node at a time writes it ({settings().describe()})", there) from None
        except rbd.Error as exc:
            raise self._failed("take its exclusive lock", exc) from None
        if before is not None and before.address != my_address():
            log.warning("%s taken over from %s after %.0f s: its Ceph client is blocklisted, "
                        "nothing it still sends is written", self.path, before.describe(),
                        time.monotonic() - started)
        me = nodes.node()
        try:
            self._image.metadata_set(NODE_KEY, me.name)
            self._image.metadata_set(PORTALS_KEY, ",".join(p for p in me.portals
                                                           if p.rpartition(":")[0] not in WILDCARDS))
        except rbd.Error as exc:  # the lock is ours all the same; only the name shown is missing
            log.error("%s: cannot record node %s in its metadata: %s", self.path, nodes.node().name, reason(exc))
        self._held = True
        log.info("%s: this node (%s) holds its exclusive lock", self.path, nodes.node().name)

    def release(self, holder: str) -> None:
        """`holder` no longer uses the image; the last one out gives the lock back."""
        import rbd
        with self._mutex:
            self._holders.discard(holder)
            if self._holders or self._image is None or not self._owned():
                return
            self._held = False
            try:
                self._image.flush()
                self._image.lock_release()
            except rbd.Error as exc:
                log.error("%s", self._failed("release its exclusive lock", exc))
                return
            log.info("%s: exclusive lock released (no session left on node %s)", self.path, nodes.node().name)

    @property
    def held(self) -> bool:
        """Whether this node holds the lock (as far as this process knows: no network call)."""
        return self._held

    def owner(self) -> Owner | None:
        import rbd
        if self._image is None:
            return None
        try:
            return self._look()
        except rbd.Error as exc:
            self._failed("look at its lock", exc)  # notes a blocklisted client (fenced)
            return None

    def _look(self) -> Owner | None:
        return owner_of(self._image)

    def _owned(self) -> bool:
        import rbd
        if self._image is None:
            return False
        try:
            return bool(self._image.is_exclusive_lock_owner())
        except rbd.Error as exc:
            self._failed("look at its lock", exc)  # notes a blocklisted client (fenced)
            return False

    def _failed(self, what: str, exc: BaseException) -> StoreError:
        if getattr(exc, "errno", None) in (errno.ESHUTDOWN, -errno.ESHUTDOWN):
            first = not nodes.fenced()
            why = nodes.fence(f"the Ceph cluster blocklisted this node's client ({my_address()}): another node "
                              "took its disks over after it stopped answering; restart bootsrv here to serve again")
            if first:
                log.error("%s: %s", self.path, why)
            return Refused(f"{self.path}: {why}")
        return StoreError(f"{self.path}: {what}: {reason(exc)} ({settings().describe()})")



LEADER_OBJECT = "bootsrv.leader"  # in the pool of the first RBD disk: every node configures the same
LEADER_LOCK = "schedules"
LEADER_LEASE = 120  # seconds a leader that stopped renewing keeps the lead
_RENEW = 1  # LIBRADOS_LOCK_FLAG_RENEW: the holder of the cookie extends its lease


class Leadership:
    """One node among those sharing a pool takes the scheduled snapshots of RBD disks: the one
    holding a RADOS lock (with a lease, renewed at each run) on an object of the pool. Each
    tick it ran is recorded on that object, so a job that fires late on a new leader does not
    take the same tick again: one snapshot per tick, whichever nodes run the schedule."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self.cookie = f"{nodes.node().name}:{uuid.uuid4().hex[:12]}"

    def runs(self, schedule: str, tick: float) -> bool:
        """Whether this node takes `schedule`'s run due at `tick` (then it is recorded as taken)."""
        import rados
        me = nodes.node().name
        try:
            with ioctx(self.pool) as context:
                try:
                    context.lock_exclusive(LEADER_OBJECT, LEADER_LOCK, self.cookie, desc=f"bootsrv node {me}",
                                           duration=LEADER_LEASE, flags=_RENEW)
                except rados.ObjectBusy:
                    log.info("schedule %s: another node leads the RBD disks' snapshots", schedule)
                    return False
                key = f"ran.{schedule}"
                try:
                    done = float(context.get_xattr(LEADER_OBJECT, key).decode() or 0)
                except rados.NoData:
                    done = 0.0
                if done >= tick:
                    log.info("schedule %s: the run due at %.0f was taken already", schedule, tick)
                    return False
                context.set_xattr(LEADER_OBJECT, key, str(tick).encode())
        except (rados.Error, StoreError) as exc:  # never twice: without the lease, no run here
            log.error("schedule %s: cannot ask for the lead in pool %s (%s): RBD disks left out", schedule,
                      self.pool, reason(exc) if isinstance(exc, rados.Error) else exc)
            return False
        log.info("schedule %s: this node (%s) leads the RBD disks' snapshots", schedule, me)
        return True

    def resign(self) -> None:
        """At a clean stop: another node may lead at once rather than after the lease."""
        import rados
        try:
            with ioctx(self.pool) as context:
                context.unlock(LEADER_OBJECT, LEADER_LOCK, self.cookie)
        except (rados.Error, StoreError):
            pass  # not leading (or the cluster is gone): the lease ends by itself
