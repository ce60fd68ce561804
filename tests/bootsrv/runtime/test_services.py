"""The Service adapters over real sockets: a start that cannot listen names the file and key,
TFTP's thread is watched through died(), stop is safe after a failed start."""

import asyncio
import socket
from pathlib import Path

import pytest

from bootsrv.config import StartupError
from bootsrv.dns import DnsAnswers, DnsService
from bootsrv.runtime.services import DnsPort, TftpThread
from bootsrv.tftp import TftpService

CONFIG = Path("/etc/bootsrv.toml")


def test_tftp_that_cannot_listen_fails_its_start_with_the_key(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        service = TftpThread(TftpService(tmp_path, "127.0.0.1", port=taken.getsockname()[1]), CONFIG)

        async def run():
            with pytest.raises(StartupError, match=r"^/etc/bootsrv.toml: tftp: cannot listen on 127.0.0.1:"):
                await service.start()
            await service.stop()
        asyncio.run(run())


def test_tftp_serving_is_alive_until_its_thread_dies(tmp_path):
    tftp = TftpService(tmp_path, "127.0.0.1", port=0)
    service = TftpThread(tftp, CONFIG)

    async def run():
        await service.start()
        assert service.died() is None
        tftp.failed = "TFTP loop died: OSError: gone"  # what the loop records when it dies
        assert service.died() == "the TFTP service died (TFTP loop died: OSError: gone); stopping bootsrv"
        await service.stop()
    asyncio.run(run())


def test_dns_that_cannot_listen_names_dns_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        service = DnsPort(DnsService(DnsAnswers("lan", dict)), "127.0.0.1", taken.getsockname()[1], CONFIG)

        async def run():
            with pytest.raises(StartupError, match=r"^/etc/bootsrv.toml: dns.port: cannot listen: "):
                await service.start()
            await service.stop()
        asyncio.run(run())
