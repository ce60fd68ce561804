"""A throw-away one-node Ceph cluster on loopback for the RBD tests (Debian's Ceph 16, pacific).

One monitor (msgr2 only, on 127.0.0.1 and a free port), one manager, one OSD (bluestore on a
sparse file), cephx on, and one RBD pool of size 1. Every file lives in one directory with its
own ceph.conf and keyrings, so the tests hand `conf=` and `keyring=` to qemu-img's rbd: driver
and to librados; nothing reads /etc/ceph. The daemons run in the foreground as our children
and are stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

TOOLS = ("ceph-mon", "ceph-mgr", "ceph-osd", "ceph", "ceph-authtool", "monmaptool", "rbd")
POOL = "rbd"
CLIENT = "bootsrv"  # the client the tests (and later bootsrv) use: `profile rbd` on the pool only
READY_TIMEOUT = 120.0  # generous: a busy CI machine; the cluster is normally ready in seconds


def missing() -> str | None:
    """Why a cluster cannot be started here (None: it can): `make test` installs the packages."""
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return f"Ceph tools missing ({', '.join(absent)}): run `make deps`"
    try:
        import rados  # noqa: F401
        import rbd  # noqa: F401
    except ImportError as error:
        return f"librados/librbd Python modules not importable ({error}): run `make venv`"
    return None


def clean_env() -> dict[str, str]:
    """This environment without CEPH_ARGS / CEPH_CONF: a stale one would point a tool at
    another cluster or add options the cluster was not made with."""
    return {key: value for key, value in os.environ.items() if key not in ("CEPH_ARGS", "CEPH_CONF")}


@dataclass
class CephCluster:
    """A running cluster, as a client sees it."""

    directory: Path
    conf: Path
    keyring: Path  # the keyring of client.<client_id>
    client_id: str
    pool: str
    mon_addr: str  # "v2:127.0.0.1:PORT"
    pids: dict[str, int] = field(default_factory=dict)  # daemon name -> PID

    @contextlib.contextmanager
    def rados(self) -> Iterator[Any]:
        """A connected rados.Rados as client.<client_id>."""
        import rados
        cluster = rados.Rados(conffile=str(self.conf), rados_id=self.client_id,
                              conf={"keyring": str(self.keyring)})
        cluster.connect(timeout=30)
        try:
            yield cluster
        finally:
            cluster.shutdown()

    @contextlib.contextmanager
    def ioctx(self) -> Iterator[Any]:
        """An I/O context on the pool, for rbd.RBD() and rbd.Image()."""
        with self.rados() as cluster:
            ioctx = cluster.open_ioctx(self.pool)
            try:
                yield ioctx
            finally:
                ioctx.close()

    def qemu_url(self, image: str, snapshot: str | None = None) -> str:
        """The image as qemu-img's rbd: driver names it, with this cluster's files."""
        name = f"{self.pool}/{image}" + (f"@{snapshot}" if snapshot else "")
        return f"rbd:{name}:conf={self.conf}:id={self.client_id}:keyring={self.keyring}"

    def rss_kib(self) -> dict[str, int]:
        """Resident memory of each daemon (KiB), from /proc."""
        sizes = {}
        for name, pid in self.pids.items():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[name] = int(line.split()[1])
        return sizes


def _conf_text(d: Path, fsid: str, mon_addr: str) -> str:
    # daemons only: clients (qemu-img, the tests' librados) sharing one admin socket path would
    # clash, and their errors belong on their stderr
    daemon = f"""admin_socket = {d}/run/$cluster-$name.asok
pid_file = {d}/run/$cluster-$name.pid
log_file = {d}/log/$cluster-$name.log
"""
    return f"""[global]
fsid = {fsid}
mon_host = {mon_addr}
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
# msgr2 only, loopback only: nothing listens or talks beyond 127.0.0.1
ms_bind_msgr1 = false
ms_bind_msgr2 = true
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
keyring = {d}/$cluster.$name.keyring
run_dir = {d}/run
# every client is patched: no health warning about old ones reclaiming global ids
auth_allow_insecure_global_id_reclaim = false
# one OSD: pools of one copy, placed across OSDs rather than hosts
mon_allow_pool_size_one = true
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
# a test machine's disk may be fuller than a production mon tolerates
mon_data_avail_crit = 0
mon_data_avail_warn = 0
mgr_initial_modules = iostat
# clone v2 (no protect needed; clones of trashed snapshots) needs clients of mimic or later;
# set in the first OSD map, as `ceph osd set-require-min-compat-client mimic` would later
mon_osd_initial_require_min_compat_client = mimic
# a map change commits after 0.1 s instead of 1 s: each pool command of a start waits for one
paxos_propose_interval = 0.1

[mon.a]
{daemon}mon_data = {d}/mon
keyring = {d}/mon/keyring

[mgr.x]
{daemon}mgr_data = {d}/mgr

[osd.0]
{daemon}osd_data = {d}/osd
osd_objectstore = bluestore
# outside osd_data: a block path inside it fails ("Too many levels of symbolic links")
bluestore_block_path = {d}/osd-block
bluestore_block_size = 10737418240
bluestore_fsck_on_mkfs = false
# without this a stop waits ~5 s for the monitor to acknowledge the OSD going down
osd_fast_shutdown_notify_mon = false
# a client that stopped answering loses its watches (and so, for librbd, its exclusive locks
# to the next node that asks) after 10 s instead of 30 s: the several-nodes tests wait less
osd_client_watch_timeout = 10
"""


def run_client(cmd: list[str], *, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a client tool (qemu-img, rbd ...) with a clean environment; fail on a non-zero exit."""
    result = subprocess.run(cmd, capture_output=True, text=True, errors="replace", env=clean_env(), timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


class _Starter:
    """The steps of a start, sharing the directory and the daemons started so far."""

    def __init__(self, directory: Path):
        self.d = directory
        self.conf = directory / "ceph.conf"
        self.procs: dict[str, subprocess.Popen] = {}

    def run(self, *cmd: str, timeout: float = 60) -> str:
        result = subprocess.run(list(cmd), capture_output=True, text=True, env=clean_env(), timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
                               + self.logs())
        return result.stdout

    def ceph(self, *args: str, timeout: float = 60) -> str:
        """The ceph CLI as client.admin, on this cluster only."""
        return self.run("ceph", "-c", str(self.conf), "--connect-timeout", "30", *args, timeout=timeout)

    def daemon(self, name: str, *cmd: str) -> None:
        # -f: foreground, so the PID we hold is the daemon's (it does not fork) and stop() can signal it
        out = open(self.d / "log" / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen([*cmd, "-f", "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, env=clean_env())
        out.close()

    def key(self, entity: str, *caps: str) -> Path:
        path = self.d / f"ceph.{entity}.keyring"
        cap_args = [arg for pair in zip(caps[::2], caps[1::2]) for arg in ("--cap", *pair)]
        self.run("ceph-authtool", "--create-keyring", str(path), "--gen-key", "-n", entity, *cap_args)
        return path

    def logs(self) -> str:
        """The tails of the daemons' logs, for an error message."""
        tails = []
        for log in sorted((self.d / "log").glob("*")):
            tails.append(f"\n--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]))
        return "".join(tails)

    def wait(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"ceph {name} exited {proc.returncode} waiting for {what}" + self.logs())
            if time.monotonic() > deadline:
                raise RuntimeError(f"ceph: no {what} after {READY_TIMEOUT:.0f} s" + self.logs())
            time.sleep(0.2)


def _osd_up(s: _Starter) -> bool:
    status = json.loads(s.ceph("osd", "stat", "-f", "json"))
    return status["num_up_osds"] == 1 and status["num_in_osds"] == 1


def _start(s: _Starter) -> CephCluster:
    d = s.d
    for sub in ("mon", "mgr", "osd", "run", "log"):
        (d / sub).mkdir()
    fsid, port = str(uuid.uuid4()), free_port()
    mon_addr = f"v2:127.0.0.1:{port}"
    s.conf.write_text(_conf_text(d, fsid, mon_addr))

    # Every key is made here and handed to the monitor's mkfs, which seeds its auth database
    # with them: no `ceph auth add` round trips once it runs.
    mon_keyring = d / "mon-seed.keyring"  # mkfs wants an empty mon_data, and copies it there as "keyring"
    s.run("ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
    keys = [
        s.key("client.admin", "mon", "allow *", "osd", "allow *", "mgr", "allow *", "mds", "allow *"),
        s.key("mgr.x", "mon", "allow profile mgr", "osd", "allow *", "mds", "allow *"),
        s.key("osd.0", "mon", "allow profile osd", "osd", "allow *", "mgr", "allow profile osd"),
        s.key(f"client.{CLIENT}", "mon", "profile rbd", "osd", f"profile rbd pool={POOL}",
              "mgr", f"profile rbd pool={POOL}"),
    ]
    for path in keys:
        s.run("ceph-authtool", str(mon_keyring), "--import-keyring", str(path))

    s.run("monmaptool", "--create", "--fsid", fsid, "--addv", "a", f"[{mon_addr}]", str(d / "monmap"))
    s.run("ceph-mon", "--mkfs", "-i", "a", "-c", str(s.conf), "--monmap", str(d / "monmap"),
          "--keyring", str(mon_keyring))
    s.daemon("mon", "ceph-mon", "-i", "a")
    s.daemon("mgr", "ceph-mgr", "-i", "x")

    osd_uuid = str(uuid.uuid4())
    osd_id = s.ceph("osd", "new", osd_uuid).strip()
    if osd_id != "0":
        raise RuntimeError(f"ceph osd new gave id {osd_id!r}, expected 0")
    s.run("ceph-osd", "-i", "0", "-c", str(s.conf), "--mkfs", "--osd-uuid", osd_uuid, timeout=120)
    s.daemon("osd", "ceph-osd", "-i", "0")
    s.wait("OSD up", lambda: _osd_up(s))

    s.ceph("osd", "pool", "create", POOL, "16", "16", "replicated", "--autoscale-mode=off")
    # writes an object: returns once the pool's PGs are active, so the cluster is ready for I/O
    s.run("rbd", "-c", str(s.conf), "pool", "init", POOL, timeout=READY_TIMEOUT)

    return CephCluster(directory=d, conf=s.conf, keyring=d / f"ceph.client.{CLIENT}.keyring", client_id=CLIENT,
                       pool=POOL, mon_addr=mon_addr, pids={name: proc.pid for name, proc in s.procs.items()})


def _stop(procs: dict[str, subprocess.Popen]) -> None:
    """SIGTERM each daemon by PID, OSD first (it flushes to the monitor), then SIGKILL stragglers."""
    for name in ("osd", "mgr", "mon"):
        proc = procs.get(name)
        if proc is None or proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def ceph_cluster(directory: Path) -> Iterator[CephCluster]:
    """Start a cluster in `directory` (must be empty or absent), yield it, then stop every daemon
    and remove the directory, whatever happened."""
    directory.mkdir(parents=True, exist_ok=True)
    starter = _Starter(directory)
    try:
        yield _start(starter)
    finally:
        try:
            _stop(starter.procs)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
