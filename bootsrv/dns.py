"""A small DNS for leased names: A and PTR for clients, NXDOMAIN for the rest
of our domain, REFUSED for everything else. dnslib is the codec; the socket is
our own asyncio one (dnslib's server is thread-per-request and prints)."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

from dnslib import PTR, QTYPE, RCODE, RR, A, DNSRecord

log = logging.getLogger("bootsrv.dns")
TTL = 60
FORWARD = b"forward"  # answer()'s verdict: not ours, ask the forwarders


class DnsAnswers:
    """Names to addresses, given by a callable so leases are read at query time."""

    def __init__(self, domain: str, names: Callable[[], dict[str, str]]) -> None:
        self.domain = domain.strip(".").lower()
        self.names = names

    def answer(self, query: bytes, *, forwarding: bool = False) -> bytes | None:
        """The reply to send; None for garbage, or FORWARD when a forwarder should answer."""
        try:
            request = DNSRecord.parse(query)
        except Exception:  # noqa: BLE001 - dnslib raises assorted errors on garbage
            return None
        if request.header.qr or not request.questions:
            return None
        question = request.questions[0]
        qname = str(question.qname).rstrip(".").lower()
        table = self.names()
        reverse = qname.endswith(".in-addr.arpa")
        hosts: list[str] = []
        if reverse:
            address = ".".join(reversed(qname[: -len(".in-addr.arpa")].split(".")))
            hosts = [host for host, ip in table.items() if ip == address]
        if forwarding and not self._ours(qname) and not hosts:
            return FORWARD
        reply = request.reply()
        if question.qtype in (QTYPE.A, QTYPE.ANY) and self._host(qname) in table:
            reply.add_answer(RR(question.qname, QTYPE.A, ttl=TTL, rdata=A(table[self._host(qname)])))
        elif question.qtype in (QTYPE.PTR, QTYPE.ANY) and reverse:
            if hosts:
                name = f"{hosts[0]}.{self.domain}." if self.domain else f"{hosts[0]}."
                reply.add_answer(RR(question.qname, QTYPE.PTR, ttl=TTL, rdata=PTR(name)))
            else:
                reply.header.rcode = RCODE.NXDOMAIN
        elif self._ours(qname):
            if self._host(qname) not in table:
                reply.header.rcode = RCODE.NXDOMAIN
        else:
            reply.header.rcode = RCODE.REFUSED  # no recursion here
        reply.header.ra = 0
        try:
            return reply.pack()
        except Exception:  # noqa: BLE001 - a name dnslib parsed but cannot write back (over 255 bytes)
            return None

    def _host(self, qname: str) -> str:
        if self.domain and qname.endswith("." + self.domain):
            return qname[: -len(self.domain) - 1]
        return qname

    def _ours(self, qname: str) -> bool:
        return bool(self.domain) and (qname == self.domain or qname.endswith("." + self.domain)) or "." not in qname


class DnsService(asyncio.DatagramProtocol):
    def __init__(self, answers: DnsAnswers, upstream: tuple[tuple[str, int], ...] = ()) -> None:
        self.answers = answers
        self.upstream = upstream  # forwarders for names that are not ours
        self.transport: asyncio.DatagramTransport | None = None

    async def start(self, host: str, port: int) -> None:
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, local_addr=(host, port))
        log.info("DNS on %s:%d for domain %r", host, port, self.answers.domain)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = self.answers.answer(data, forwarding=bool(self.upstream))
        if reply is FORWARD:
            asyncio.get_running_loop().create_task(self._forward(data, addr))
            return
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)

    async def _forward(self, query: bytes, addr: tuple[str, int]) -> None:
        """Relay to the first forwarder that answers within 2 s; SERVFAIL if none does."""
        loop = asyncio.get_running_loop()
        for server in self.upstream:
            answer: asyncio.Future[bytes] = loop.create_future()

            class _Once(asyncio.DatagramProtocol):
                def datagram_received(self, data: bytes, _: tuple[str, int]) -> None:
                    if not answer.done():
                        answer.set_result(data)

            transport, _ = await loop.create_datagram_endpoint(_Once, remote_addr=server)
            try:
                transport.sendto(query)
                reply = await asyncio.wait_for(answer, 2.0)
            except (asyncio.TimeoutError, OSError):
                log.warning("DNS forwarder %s:%d did not answer", *server)
                continue
            finally:
                transport.close()
            if self.transport is not None:
                self.transport.sendto(reply, addr)
            return
        failure = DNSRecord.parse(query).reply()
        failure.header.rcode = RCODE.SERVFAIL
        if self.transport is not None:
            self.transport.sendto(failure.pack(), addr)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
