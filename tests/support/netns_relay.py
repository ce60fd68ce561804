"""Host loopback ports made reachable inside a test's network namespace, on the namespace's own
127.0.0.1 and the same port numbers: how a bootsrv running in a lab namespace reaches the test
session's Ceph cluster, whose monitor and OSD listen on the host's loopback only.

A listening socket belongs to the network namespace its creating thread was in, and keeps it.
So a short-lived thread enters the namespace (setns(2) through libc: os.setns is Python 3.12+),
opens the listeners and leaves; a relay thread in this process then accepts there and connects
to the host's 127.0.0.1. Bytes never leave the machine: the namespace's loopback, this
process, the host's loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import socket
import threading
from typing import Iterator

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _listeners_in(netns: str, ports: list[int]) -> list[socket.socket]:
    made: list[socket.socket] = []
    failure: list[BaseException] = []

    def enter_and_listen() -> None:
        # A thread of its own: setns changes only the calling thread, which then ends.
        try:
            with open(f"/run/netns/{netns}") as handle:
                if _libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {netns}")
            for port in ports:
                listener = socket.create_server(("127.0.0.1", port), reuse_port=False)
                listener.setblocking(False)
                made.append(listener)
        except BaseException as exc:  # reported by the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=enter_and_listen)
    worker.start()
    worker.join()
    if failure:
        for listener in made:
            listener.close()
        raise failure[0]
    return made


class _Relay:
    def __init__(self, listeners: list[socket.socket]) -> None:
        self.selector = selectors.DefaultSelector()
        self.stop_r, self.stop_w = os.pipe()
        self.selector.register(self.stop_r, selectors.EVENT_READ, None)
        self.listeners = listeners
        for listener in listeners:
            self.selector.register(listener, selectors.EVENT_READ, ("accept", listener))
        self.peers: dict[socket.socket, socket.socket] = {}
        self.thread = threading.Thread(target=self.run, daemon=True, name="netns-relay")

    def run(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.data is None:
                    return
                kind, sock = key.data
                if kind == "accept":
                    self._accept(sock)
                else:
                    self._pump(sock)

    def _accept(self, listener: socket.socket) -> None:
        try:
            inside, _ = listener.accept()
        except BlockingIOError:
            return
        port = listener.getsockname()[1]
        try:
            outside = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            inside.close()
            return
        for sock in (inside, outside):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.peers[inside], self.peers[outside] = outside, inside
        self.selector.register(inside, selectors.EVENT_READ, ("pump", inside))
        self.selector.register(outside, selectors.EVENT_READ, ("pump", outside))

    def _pump(self, sock: socket.socket) -> None:
        other = self.peers.get(sock)
        if other is None:
            return
        try:
            data = sock.recv(1 << 20)
            if data:
                other.setblocking(True)  # simple back-pressure: the test's traffic is small
                other.sendall(data)
                other.setblocking(False)
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            pass
        self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self.peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            self.peers.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(s)
            s.close()

    def close(self) -> None:
        os.write(self.stop_w, b"x")
        self.thread.join(timeout=10)
        for sock in [*self.peers, *self.listeners]:
            sock.close()
        os.close(self.stop_r)
        os.close(self.stop_w)
        self.selector.close()


@contextlib.contextmanager
def host_ports_in(netns: str, ports: list[int]) -> Iterator[None]:
    """While inside: 127.0.0.1:PORT in `netns` reaches 127.0.0.1:PORT of the host, for each port."""
    relay = _Relay(_listeners_in(netns, ports))
    relay.thread.start()
    try:
        yield
    finally:
        relay.close()
