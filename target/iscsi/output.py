"""The write half of a connection: gathered writes and sendfile, no joining.

asyncio's transports copy: Python 3.11's writelines joins every buffer into
one bytes object, and a transport cannot send from a file. Here outgoing
buffers are written with writev(2) straight from where they are (a PDU header
beside the data it frames), and file slices (large READ data, see
target.stores.pieces) go from the page cache to the socket with sendfile(2).

The transport keeps the read half. Writes go to a duplicate of the socket's
descriptor: the event loop refuses to watch a descriptor a transport owns, and
the duplicate is what it watches for room in the send buffer.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections import deque
from typing import Callable, Iterable

from target.stores.pieces import Buffer, FileSlice, Pieces

_IOV_MAX = 512  # buffers per writev (Linux allows 1024)
# The send queue's depth at which the connection stops reading requests, and the
# depth at which it starts again: an initiator that does not read its answers
# cannot make us queue without bound.
HIGH_WATER = 8 << 20
LOW_WATER = 2 << 20


class SocketOutput:
    def __init__(self, loop: asyncio.AbstractEventLoop, sock_fd: int, *,
                 on_pressure: Callable[[bool], None], on_error: Callable[[OSError], None]) -> None:
        self._loop = loop
        self._fd = os.dup(sock_fd)
        self._queue: deque[Buffer | FileSlice] = deque()
        self.queued = 0  # bytes waiting
        self._watching = False
        self._pressed = False
        self._on_pressure = on_pressure  # True: stop reading; False: read again
        self._on_error = on_error
        self._on_drained: Callable[[], None] | None = None
        self.closed = False

    def send(self, buffers: Iterable[Buffer | Pieces]) -> None:
        if self.closed:
            return
        queue = self._queue
        for buf in buffers:
            if isinstance(buf, Pieces):
                for part in buf.parts:
                    if len(part):
                        queue.append(part)
            elif len(buf):
                queue.append(buf)
            self.queued += len(buf)
        if not self._watching:
            self._write()

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call `callback` once everything queued has been written (now, if nothing is)."""
        if not self._queue or self.closed:
            callback()
        else:
            self._on_drained = callback

    def close(self) -> None:
        """Drop what is queued (file slices close their descriptors as they go)."""
        if self.closed:
            return
        self.closed = True
        if self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False
        self._queue.clear()
        self.queued = 0
        os.close(self._fd)

    # ---- writing ----------------------------------------------------------

    def _write(self) -> None:
        queue, fd = self._queue, self._fd
        try:
            while queue:
                head = queue[0]
                if isinstance(head, FileSlice):
                    sent = os.sendfile(fd, head.handle.fd, head.offset, head.length)
                    if sent == 0:  # the file ends early (truncated under us): the rest reads as zeros
                        queue[0] = bytes(head.length)
                        continue
                    self._consumed(sent)
                    continue
                batch = []
                for buf in queue:
                    if isinstance(buf, FileSlice) or len(batch) == _IOV_MAX:
                        break
                    batch.append(buf)
                self._consumed(os.writev(fd, batch))
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                pass
            else:
                self.close()
                self._on_error(exc)
                return
        self._after_write()

    def _consumed(self, sent: int) -> None:
        """Drop `sent` bytes from the head of the queue."""
        queue = self._queue
        self.queued -= sent
        while sent:
            head = queue[0]
            size = len(head)
            if sent >= size:
                queue.popleft()
                sent -= size
            else:
                queue[0] = head[sent:] if isinstance(head, FileSlice) else memoryview(head)[sent:]
                sent = 0

    def _after_write(self) -> None:
        if self._pressed and self.queued < LOW_WATER:
            self._pressed = False
            self._on_pressure(False)
        elif not self._pressed and self.queued > HIGH_WATER:
            self._pressed = True
            self._on_pressure(True)
        if self._queue:
            if not self._watching:
                self._loop.add_writer(self._fd, self._write)
                self._watching = True
            return
        if self._watching:
            self._loop.remove_writer(self._fd)
            self._watching = False
        callback, self._on_drained = self._on_drained, None
        if callback is not None:
            callback()
