"""An initiator that stays logged in while a test changes the disk under it: qemu-io
reading commands from a pipe, one session for its whole life."""

from __future__ import annotations

import contextlib
import subprocess
import time
from typing import Callable, Iterator

from tests.support.tools import require_tool


class QemuIoSession:
    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.output = ""

    def send(self, *commands: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{command}\n" for command in commands))
        self.proc.stdin.flush()

    def finish(self, *commands: str) -> str:
        """Run the last commands, quit, and return everything qemu-io printed."""
        self.send(*commands, "quit")
        self.output, _ = self.proc.communicate(timeout=60)
        return self.output


@contextlib.contextmanager
def qemu_io_session(url: str, logged_in: Callable[[], bool]) -> Iterator[QemuIoSession]:
    """qemu-io on `url`, yielded once its first READ ran and `logged_in()` holds (the
    server's log shows the login); killed on the way out if still running."""
    proc = subprocess.Popen([require_tool("qemu-io"), "-f", "raw", url], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    session = QemuIoSession(proc)
    try:
        session.send("read 0 512")
        deadline = time.monotonic() + 30  # a readiness wait, not an assertion on speed
        while not logged_in():
            assert time.monotonic() < deadline and proc.poll() is None, "qemu-io did not log in"
            time.sleep(0.05)
        yield session
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
