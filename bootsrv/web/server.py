"""HTTP for the dashboard, its JSON API and /metrics: h11 (sans-IO HTTP/1.1)
under a small asyncio shell. Off unless `[web] listen` is set; everything but
the page and its static files needs `Authorization: Bearer <token>`. The server
also keeps the charts' history (bootsrv.web.history) while it runs."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

import h11

from bootsrv.ops import OPERATIONS, dispatch
from bootsrv.web.history import History, HistorySampler
from bootsrv.web.metrics import render_metrics
from bootsrv.web.page import load_assets

if TYPE_CHECKING:
    from bootsrv.runtime.view import ApplianceView

log = logging.getLogger("bootsrv.web")
MAX_BODY = 64 * 1024
IDLE_SECONDS = 30.0
Reply = tuple[int, str, bytes]
# The page loads only its own files; uPlot sets inline styles on its elements.
SECURITY_POLICY = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"


class WebServer:
    def __init__(self, view: "ApplianceView", token: str) -> None:
        self.view = view
        self.token = token.encode()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0
        self.assets = load_assets()
        self.history = History(view.config.web.history_interval)
        self._sampler = HistorySampler(view, self.history)

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._connection, host, port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self._sampler.start()
        return self.port

    def close(self) -> None:
        self._sampler.stop()
        if self._server is not None:
            self._server.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_BODY)
        try:
            while True:
                request = await self._next(conn, reader)
                if not isinstance(request, h11.Request):
                    break
                length = dict(request.headers).get(b"content-length", b"0")
                if not length.isdigit() or int(length) > MAX_BODY:
                    raise h11.RemoteProtocolError("request body too large", 413)
                body = b""
                while True:
                    event = await self._next(conn, reader)
                    if isinstance(event, h11.Data):
                        body += event.data
                        if len(body) > MAX_BODY:
                            raise h11.RemoteProtocolError("request body too large", 413)
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        return
                status, content_type, payload = await self._route(request, body)
                writer.write(conn.send(h11.Response(status_code=status, headers=[
                    ("content-type", content_type), ("content-length", str(len(payload))),
                    ("cache-control", "no-store"), ("x-content-type-options", "nosniff"),
                    ("content-security-policy", SECURITY_POLICY)])))
                writer.write(conn.send(h11.Data(data=payload)) + conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE:
                    break
                conn.start_next_cycle()
        except h11.RemoteProtocolError as exc:
            if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                text = f"{exc}\n".encode()
                writer.write(conn.send(h11.Response(status_code=exc.error_status_hint, headers=[
                    ("content-type", "text/plain"), ("content-length", str(len(text))), ("connection", "close")])))
                writer.write(conn.send(h11.Data(data=text)) + conn.send(h11.EndOfMessage()))
        except (ConnectionError, asyncio.TimeoutError, h11.LocalProtocolError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _next(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            conn.receive_data(await asyncio.wait_for(reader.read(65536), IDLE_SECONDS))

    def _authorized(self, request: h11.Request) -> bool:
        for name, value in request.headers:
            if name == b"authorization" and value.startswith(b"Bearer "):
                return hmac.compare_digest(value[7:].strip(), self.token)
        return False

    async def _route(self, request: h11.Request, body: bytes) -> Reply:
        method, path = request.method.decode(), request.target.decode().split("?", 1)[0]
        if method == "GET" and path in self.assets:
            return 200, *self.assets[path]
        if not self._authorized(request):
            return 401, "application/json", b'{"ok": false, "error": "a token is needed (Authorization: Bearer)"}'
        if method == "GET" and path == "/metrics":
            return 200, "text/plain; version=0.0.4; charset=utf-8", render_metrics(self.view)
        if method == "GET" and path == "/api/overview":
            return _json(200, await self._overview())
        if method == "POST" and path.startswith("/api/"):
            try:
                args = json.loads(body or b"{}")
            except ValueError:
                return _json(400, {"ok": False, "error": "the body must be a JSON object"})
            op = OPERATIONS.get(path[5:])
            if op is not None and op.local_only:
                return _json(403, {"ok": False, "error": f"{op.name} names files of the server: run it with the "
                                                         f"bootsrv command on the server (the admin socket)"})
            reply = await dispatch(self.view, path[5:], args)
            return _json(200 if reply.get("ok") else 400, reply)
        return _json(404, {"ok": False, "error": f"no {method} {path}"})

    async def _overview(self) -> dict[str, Any]:
        """What the page shows, in one request: four operations' results by name."""
        parts = {}
        for op, key in (("status", "status"), ("clients", "clients"), ("sessions", "sessions"),
                        ("snapshot.list", "snapshots")):
            parts[key] = (await dispatch(self.view, op, {})).get("result")
        return {"ok": True, **parts}


def _json(status: int, data: Any) -> Reply:
    return status, "application/json", json.dumps(data).encode()
