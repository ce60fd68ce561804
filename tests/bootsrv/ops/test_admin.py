"""The admin socket end to end: the CLI's `call` against a real AdminServer on a unix
socket, answered by the operations table."""

import asyncio
import json
import socket

import pytest

from bootsrv.admin import AdminServer, call, other_instance, socket_path
from bootsrv.ops import OperationFailed
from bootsrv.runtime.view import ApplianceView
from tests.support.appliance import opened_appliance


def over_the_socket(app, *requests):
    """Each request is (op, args) for `call`, or raw bytes sent as they are; the answers."""
    state_dir = app.config.server.state_dir

    def raw(line):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(socket_path(state_dir)))
            sock.sendall(line)
            return json.loads(sock.makefile().readline())

    def one(request):
        if isinstance(request, bytes):
            return raw(request)
        try:
            return call(state_dir, *request)
        except OperationFailed as exc:
            return exc

    async def session():
        server = AdminServer(ApplianceView.of(app), socket_path(state_dir))
        await server.start()
        try:
            assert other_instance(state_dir) is not None  # a second `serve` would refuse this state_dir
            loop = asyncio.get_running_loop()
            return [await loop.run_in_executor(None, one, request) for request in requests]
        finally:
            server.close()

    return asyncio.run(session())


def test_answers_errors_and_bad_requests(tmp_path):
    with opened_appliance(tmp_path) as app:
        status, missing, bad, unknown = over_the_socket(
            app, ("status", {}), ("snapshot.create", {"disk": "nope"}), b"not json\n", b'{"op": "x"}\n')
        assert status["sessions"] == 0 and len(status["disks"]) == 4
        assert isinstance(missing, OperationFailed) and "nope" in str(missing)
        assert bad["ok"] is False and bad["error"].startswith("bad request; operations: client.add")
        assert unknown["ok"] is False and unknown["error"].startswith("no operation 'x'")
        assert not socket_path(app.config.server.state_dir).exists()  # removed on close
        assert other_instance(app.config.server.state_dir) is None


def test_no_server_is_a_connection_error_naming_the_socket(tmp_path):
    with pytest.raises(ConnectionError, match="bootsrv is not running for this configuration"):
        call(tmp_path, "status")
