"""TftpService over real sockets with a real client (curl), including a process holding more
than 1024 descriptors: tftpy's own select() loop dies there ("filedescriptor out of range")."""

import os
import resource
import select
import shutil
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from bootsrv.tftp import TftpService

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
EXTRA_FDS = 1100


def fetch(port, name, out, blksize=None):
    cmd = ["curl", "-sS", "--max-time", "30", f"tftp://127.0.0.1:{port}/{name}", "-o", str(out)]
    if blksize:
        cmd[1:1] = ["--tftp-blksize", str(blksize)]
    return subprocess.run(cmd, capture_output=True, timeout=60)


@pytest.fixture
def many_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = EXTRA_FDS + 512
    if soft != resource.RLIM_INFINITY and soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {want}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    null = os.open(os.devnull, os.O_RDONLY)
    fds = [os.dup(null) for _ in range(EXTRA_FDS)]
    try:
        yield fds
    finally:
        for fd in fds:
            os.close(fd)
        os.close(null)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def files(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    big = os.urandom(300_000)  # many blocks, and a partial last one
    (root / "big.bin").write_bytes(big)
    other = os.urandom(150_001)
    (root / "sub" / "other.efi").write_bytes(other)
    (root / "exact.bin").write_bytes(os.urandom(512 * 4))  # ends with an empty DATA block
    (tmp_path / "secret").write_text("no")
    return root, {"big.bin": big, "sub/other.efi": other, "exact.bin": (root / "exact.bin").read_bytes()}


def generated(name):
    if name == "boom.ipxe":
        raise RuntimeError("generator failed")
    return b"#!ipxe\nchain http://x/" + name.encode() + b"\n" if name.endswith(".ipxe") else None


@pytest.fixture
def service(files):
    root, _ = files
    tftp = TftpService(root, "127.0.0.1", port=0, generated=generated)
    yield tftp
    tftp.stop()


def test_serves_past_1024_descriptors(many_fds, files, service, tmp_path):
    _, contents = files
    service.start()
    assert service.alive and service.failed is None
    # The premise: the service's own sockets are past FD_SETSIZE, where select() gives up.
    assert service._sock.fileno() > 1024
    with pytest.raises(ValueError):
        select.select([service._sock], [], [], 0)

    out = tmp_path / "big.out"
    done = fetch(service.port, "big.bin", out)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == contents["big.bin"]

    with ThreadPoolExecutor(2) as pool:  # two transfers at once, each with its own socket
        runs = list(pool.map(lambda item: (item, fetch(service.port, item[0], tmp_path / f"c{item[1]}.out",
                                                       blksize=1468 if item[1] else None)),
                             [("big.bin", 0), ("sub/other.efi", 1)]))
    for (name, i), done in runs:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / f"c{i}.out").read_bytes() == contents[name]

    done = fetch(service.port, "exact.bin", tmp_path / "exact.out")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "exact.out").read_bytes() == contents["exact.bin"]

    done = fetch(service.port, "ws01.ipxe", tmp_path / "gen.out")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "gen.out").read_bytes() == b"#!ipxe\nchain http://x/ws01.ipxe\n"
    assert service.transfers == 5
    assert service.alive


def test_refusals_and_a_failing_generator_leave_the_service_serving(files, service, tmp_path):
    _, contents = files
    service.start()
    for bad in ("../secret", "sub/../../secret", "missing.bin", "boom.ipxe"):
        done = fetch(service.port, bad, tmp_path / "bad.out")
        assert done.returncode != 0, bad
    upload = tmp_path / "up.txt"
    upload.write_text("hello")
    done = subprocess.run(["curl", "-sS", "--max-time", "30", "-T", str(upload),
                           f"tftp://127.0.0.1:{service.port}/up.txt"], capture_output=True, timeout=60)
    assert done.returncode != 0
    assert not list(files[0].rglob("up.txt"))
    # Garbage on the listening port (a 1-byte datagram made tftpy's parser raise struct.error).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
        for blob in (b"\x00", b"", b"\xff\xff", b"\x00\x01no-terminator", b"\x00\x05\x00\x00x\x00"):
            junk.sendto(blob, ("127.0.0.1", service.port))
    done = fetch(service.port, "sub/other.efi", tmp_path / "ok.out")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "ok.out").read_bytes() == contents["sub/other.efi"]
    assert service.alive and service.failed is None
    assert service.transfers == 1


def test_a_port_in_use_is_reported_not_raised(files, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        tftp = TftpService(files[0], "127.0.0.1", port=taken.getsockname()[1])
        tftp.start()
        try:
            assert not tftp.alive
            assert tftp.failed and "cannot listen" in tftp.failed
        finally:
            tftp.stop()


def test_stop_ends_the_loop_and_frees_the_port(files):
    tftp = TftpService(files[0], "127.0.0.1", port=0)
    tftp.start()
    port = tftp.port
    assert tftp.alive
    tftp.stop()
    assert not tftp.alive and tftp.failed is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))  # released


def rrq(name):
    return b"\x00\x01" + name.encode() + b"\x00octet\x00"


def test_unacknowledged_data_is_resent_and_extra_transfers_are_refused(files):
    _, contents = files
    tftp = TftpService(files[0], "127.0.0.1", port=0)
    tftp.MAX_TRANSFERS = 2  # the cap, made small enough to reach
    tftp.start()
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    try:
        for client in clients:
            client.settimeout(1.5)
        for client in clients[:2]:
            client.sendto(rrq("big.bin"), ("127.0.0.1", tftp.port))
            data, peer = client.recvfrom(1024)
            assert data[:4] == b"\x00\x03\x00\x01" and data[4:] == contents["big.bin"][:512]
        # A third at once is dropped: no answer, no socket made for it.
        clients[2].sendto(rrq("big.bin"), ("127.0.0.1", tftp.port))
        with pytest.raises(TimeoutError):
            clients[2].recvfrom(1024)
        assert len(tftp._sessions) == 2
        # No ACK from the first: tftpy's timeout (5 s) brings block 1 again.
        clients[0].settimeout(tftp.TIMEOUT + 3)
        again, _ = clients[0].recvfrom(1024)
        assert again == data[:4] + contents["big.bin"][:512]
        # The second finishes the transfer (blocks up to the short last one), freeing its slot; it
        # waited as long, so it may see its block 1 resent too, which it skips as a client does.
        client, got, block = clients[1], bytearray(), 1
        client.settimeout(5)
        while True:
            got += data[4:]
            client.sendto(b"\x00\x04" + block.to_bytes(2, "big"), peer)
            if len(data) < 516:
                break
            data, peer = client.recvfrom(1024)
            while data[:4] == b"\x00\x03" + block.to_bytes(2, "big"):  # a resend of the one acked
                data, peer = client.recvfrom(1024)
            block += 1
            assert data[:4] == b"\x00\x03" + block.to_bytes(2, "big")
        assert bytes(got) == contents["big.bin"]
        clients[2].settimeout(5)
        clients[2].sendto(rrq("sub/other.efi"), ("127.0.0.1", tftp.port))
        data, _ = clients[2].recvfrom(1024)
        assert data[:4] == b"\x00\x03\x00\x01"
        assert tftp.alive
    finally:
        for client in clients:
            client.close()
        tftp.stop()
