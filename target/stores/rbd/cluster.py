"""The process's one connection to the Ceph cluster of `rbd:` disks, the `[ceph]` settings it
is made with, and the one-line words for librados/librbd failures.

The settings (ceph.conf, client id, keyring) are the appliance's `[ceph]` section, handed over
with `configure` before the first open; every image shares the connection.
"""

from __future__ import annotations

import errno
import importlib.machinery
import importlib.util
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from target.stores.errors import FormatError, StoreError

HOST_MODULES = Path("/usr/lib/python3/dist-packages")  # Debian's python3-rados / python3-rbd
CONNECT_TIMEOUT = 10  # seconds: an unreachable monitor is an error at start, not a hang


@dataclass(frozen=True, slots=True)
class CephSettings:
    conf: str = "/etc/ceph/ceph.conf"
    client_id: str = "admin"
    keyring: str = ""  # empty: what ceph.conf names (or the default keyring paths)

    def describe(self) -> str:
        return f"cluster {self.conf} as client.{self.client_id}"


_settings = CephSettings()
_cluster: Any = None
_guard = threading.Lock()


def available() -> str:
    """Why librbd cannot be used here, or "" when it can."""
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError as exc:
        where = ("the one-file binary uses the host's: " if getattr(sys, "frozen", False)
                 else "make deps links them into the venv; ")
        return (f"librbd's Python modules are not importable ({exc}): install python3-rbd and python3-rados "
                f"({where}{HOST_MODULES})")
    return ""


def use_host_librbd() -> bool:
    """The one-file binary carries no librbd (it must match the host's Ceph libraries, plugins and
    ceph.conf): load the host's python3-rados and python3-rbd modules, built for the same CPython
    ABI, by file, just those two (putting all of dist-packages on the path would let the host's
    copies of other packages shadow ours). False when the host has none: `rbd:` paths then fail
    with `available()`'s message, every other disk works."""
    loaded = []
    for name in ("rados", "rbd"):  # rbd's module imports rados: that one first
        if name in sys.modules:
            loaded.append(name)
            continue
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = HOST_MODULES / f"{name}{suffix}"
            if path.exists():
                spec = importlib.util.spec_from_file_location(name, path)
                assert spec is not None and spec.loader is not None
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                try:
                    spec.loader.exec_module(module)
                except ImportError:  # another ABI, or its libraries are missing
                    del sys.modules[name]
                    return False
                loaded.append(name)
                break
    return loaded == ["rados", "rbd"]


def configure(settings: CephSettings) -> None:
    """Settings for the next connection; an open one is closed (a reload changed them)."""
    global _settings, _cluster
    with _guard:
        if _cluster is not None and settings != _settings:
            _cluster.shutdown()
            _cluster = None
        _settings = settings


def connect() -> Any:
    """The process's cluster connection, made on first use."""
    global _cluster
    with _guard:
        if _cluster is not None:
            return _cluster
        why = available()
        if why:
            raise StoreError(why)
        import rados
        # No cache: an acknowledged write is on the OSDs. Partial discards zero their range:
        # the LU promises that unmapped blocks read zeros (LBPRZ). No OSD operation timeout (as
        # tgt's bs_rbd and QEMU's rbd driver): an OSD that fails is marked down after ~20-30 s
        # and its I/O goes on elsewhere, where a timeout would turn that stall into MEDIUM ERRORs
        # on a diskless root; the initiator's own timers (abort, reset, relogin) still run.
        conf = {"rbd_cache": "false", "rbd_skip_partial_discard": "false", "client_mount_timeout": str(CONNECT_TIMEOUT),
                "rados_mon_op_timeout": str(CONNECT_TIMEOUT)}
        if _settings.keyring:
            conf["keyring"] = _settings.keyring
        try:
            cluster = rados.Rados(conffile=_settings.conf, rados_id=_settings.client_id, conf=conf)
            cluster.connect(timeout=CONNECT_TIMEOUT)
        except (rados.Error, OSError) as exc:
            raise StoreError(f"cannot connect to the Ceph {_settings.describe()}: {reason(exc)}") from None
        _cluster = cluster
        return cluster


def disconnect() -> None:
    global _cluster
    with _guard:
        if _cluster is not None:
            _cluster.shutdown()
            _cluster = None


def reason(exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    words = {errno.ENOENT: "not found", errno.EACCES: "permission denied", errno.EPERM: "permission denied",
             errno.ETIMEDOUT: "timed out (no answer from the monitors or OSDs)", errno.EEXIST: "already exists"}
    return words.get(abs(code), str(exc)) if isinstance(code, int) else str(exc) or type(exc).__name__


def is_rbd(path: object) -> bool:
    """Does a disk path name an RBD image (rbd:POOL/IMAGE[@SNAP]), QEMU's way?"""
    return str(path).startswith("rbd:")


def split(locator: str) -> tuple[str, str, str | None]:
    """POOL/IMAGE[@SNAP] -> (pool, image, snapshot or None)."""
    pool, sep, rest = locator.partition("/")
    image, _, snap = rest.partition("@")
    if not sep or not pool or not image:
        raise FormatError(f"rbd:{locator}: expected rbd:POOL/IMAGE (or rbd:POOL/IMAGE@SNAPSHOT)")
    return pool, image, snap or None




def settings() -> CephSettings:
    return _settings
