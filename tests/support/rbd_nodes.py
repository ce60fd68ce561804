"""Several bootsrv nodes over the test session's Ceph cluster (issue 19, several nodes): each node
its own state folder, portal and configuration, all serving the same `rbd:POOL/IMAGE`; an
initiator that stays logged in to one of them (qemu-io reading commands from a pipe); and
QEMU's own RBD driver to look at what the cluster holds."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.support.ceph import CephCluster, clean_env
from tests.support.rbd_lu import RBD_IQN, rbd_config
from tests.support.server import Server, start_server
from tests.support.tools import require_tool

PROMPT = "qemu-io> "
WAIT = 120.0  # readiness waits (a takeover waits for the dead node's watch to expire), not assertions


def start_node(workdir: Path, cluster: CephCluster, image: str, name: str, more: str = "") -> Server:
    """A bootsrv node named `name` serving rbd:POOL/IMAGE (made on first use) as RBD_IQN, as disk
    rbd0; `more` is appended to its configuration."""
    workdir.mkdir(parents=True, exist_ok=True)
    return start_server(workdir, rbd_config(cluster, image) + f'\n[node]\nname = "{name}"\n' + more)


def two_nodes_one_client(tmp_path: Path, cluster: CephCluster, image: str, pattern: int,
                         length: str) -> tuple[Server, Server, "Shell"]:
    """Nodes a and b serving `image`, and a client logged in to a that wrote `length` bytes of
    `pattern` from offset 0 and flushed them (acknowledged: they must survive a's death)."""
    a = start_node(tmp_path / "a", cluster, image, "a")
    b = start_node(tmp_path / "b", cluster, image, "b")
    client = Shell(url(a))
    wrote, flushed = client.run(f"write -P {pattern:#x} 0 {length}"), client.run("flush")
    assert "wrote" in wrote and "failed" not in flushed, wrote + flushed + a.log_text()
    return a, b, client


def leader_lock(cluster: CephCluster) -> str:
    """`rados lock info` of the schedules' leader object: the RADOS CLI's own view of the lead."""
    return subprocess.run(["rados", "-c", str(cluster.conf), "--id", cluster.client_id, "--keyring",
                           str(cluster.keyring), "-p", cluster.pool, "lock", "info", "bootsrv.leader", "schedules"],
                          capture_output=True, text=True, env=clean_env(), timeout=60).stdout


def url(node: Server) -> str:
    return node.url(RBD_IQN)


def logins(node: Server) -> int:
    return node.log_text().count(f"logged in to {RBD_IQN}")


def qemu_io(target: str, *commands: str, read_only: bool = False) -> subprocess.CompletedProcess:
    """One qemu-io run (it logs in, runs `commands`, logs out); not checked: the caller looks."""
    args = [require_tool("qemu-io"), "-f", "raw", *(["-r"] if read_only else [])]
    for command in commands:
        args += ["-c", command]
    return subprocess.run([*args, target], capture_output=True, text=True, env=clean_env(), timeout=WAIT + 60)


def cluster_holds(cluster: CephCluster, image: str, *reads: str) -> subprocess.CompletedProcess:
    """qemu-io's `read -P` checks straight from the cluster through QEMU's RBD driver, read-only
    (no exclusive lock asked for)."""
    return qemu_io(cluster.qemu_url(image), *reads, read_only=True)


def failed(result: subprocess.CompletedProcess) -> bool:
    text = result.stdout + result.stderr
    return result.returncode != 0 or "failed" in text or "Pattern verification" in text


class Shell:
    """qemu-io on one node for its whole life: the client's session stays logged in while the
    test stops, kills or replaces the node under it."""

    def __init__(self, target: str) -> None:
        self.proc = subprocess.Popen([require_tool("qemu-io"), "-f", "raw", target], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=clean_env())
        self._text = ""
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        self._wait_prompts(1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            chunk = self.proc.stdout.read(1)
            with self._cond:
                if not chunk:
                    self._text += "\n(qemu-io exited)\n"
                    self._cond.notify_all()
                    return
                self._text += chunk
                self._cond.notify_all()

    def _wait_prompts(self, count: int) -> str:
        deadline = time.monotonic() + WAIT
        with self._cond:
            while self._text.count(PROMPT) < count and "(qemu-io exited)" not in self._text:
                left = deadline - time.monotonic()
                assert left > 0, f"qemu-io did not answer:\n{self._text}"
                self._cond.wait(left)
            return self._text

    def send(self, command: str) -> None:
        """Send without waiting for the answer (the node may be stopped)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def run(self, command: str) -> str:
        """Run one command and return what qemu-io printed for it."""
        with self._cond:
            before = self._text.count(PROMPT)
        self.send(command)
        return self.answer(before + 1)

    def answer(self, prompts: int) -> str:
        text = self._wait_prompts(prompts)
        return text.split(PROMPT)[prompts - 1] if text.count(PROMPT) >= prompts else text

    def prompts(self) -> int:
        with self._cond:
            return self._text.count(PROMPT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def freeze(node: Server) -> None:
    os.kill(node.proc.pid, signal.SIGSTOP)


def thaw(node: Server) -> None:
    os.kill(node.proc.pid, signal.SIGCONT)


def kill(node: Server) -> None:
    """kill -9: no logout, no lock release, no flush beyond what was acknowledged."""
    node.proc.kill()
    node.proc.wait()

