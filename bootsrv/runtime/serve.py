"""The server's main: one appliance from start to stop, and the watch on its services."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal

from bootsrv.admin import other_instance
from bootsrv.config import Config, StartupError
from bootsrv.runtime.appliance import Appliance

log = logging.getLogger("bootsrv")


async def serve(config: Config) -> None:
    """Run until SIGTERM or SIGINT, then stop accepting, close sessions, flush, return."""
    # Every disk layer (snapshots stack them) and every session holds a descriptor.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    running = other_instance(config.server.state_dir)
    if running:
        raise StartupError(f"{config.path}: {running}")
    app = Appliance(config)
    app.open_disks()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    died: list[str] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await app.start()
        tasks = [loop.create_task(app.park_idle_disks()), loop.create_task(_watch(app, died, stop))]
        log.info("bootsrv ready")
        await stop.wait()
        log.info("stopping")
    finally:
        for task in tasks:
            task.cancel()
        await app.stop()
    if died:
        raise StartupError(f"{config.path}: {died[0]}")


async def _watch(app: Appliance, died: list[str], stop: asyncio.Event) -> None:
    """A service that dies is never silently gone: the server says so and exits (a supervisor
    such as systemd restarts it), rather than serve a lab that can no longer boot."""
    while True:
        await asyncio.sleep(1.0)
        why = app.died()
        if why is not None:
            died.append(why)
            log.error("%s", why)
            stop.set()
            return
