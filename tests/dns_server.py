"""A real authoritative DNS server on loopback for tests (dnslib), loaded from zone lines.

    with LocalDNS(["example.org. 60 IN MX 10 mx.example.org."]) as dns:
        resolver = DnsResolver(servers=[dns.address])

Names listed in ``fail`` answer SERVFAIL, to test a failing resolver.
"""

from __future__ import annotations

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from config.redis_server import free_port


class _ZoneResolver(BaseResolver):
    def __init__(self, records: list[RR], fail: set[str]):
        self.records = records
        self.fail = fail

    def resolve(self, request, handler):
        reply = request.reply()
        qname = request.q.qname
        name = str(qname).lower()
        if name.rstrip(".") in self.fail:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        known = False
        for record in self.records:
            if str(record.rname).lower() == name:
                known = True
                if request.q.qtype in (record.rtype, QTYPE.ANY):
                    reply.add_answer(record)
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LocalDNS:
    def __init__(self, zone: list[str] | None = None, fail: set[str] | None = None):
        self.records: list[RR] = []
        self.fail = set(fail or ())
        for line in zone or []:
            self.add(line)
        self.port = free_port()
        self._resolver = _ZoneResolver(self.records, self.fail)
        self._servers = [
            DNSServer(self._resolver, address="127.0.0.1", port=self.port,
                      logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")),
            DNSServer(self._resolver, address="127.0.0.1", port=self.port, tcp=True,
                      logger=DNSLogger("-request,-reply,-truncated,-error,-recv,-send,-data")),
        ]

    def add(self, zone_line: str) -> None:
        self.records.extend(RR.fromZone(zone_line))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> LocalDNS:
        for server in self._servers:
            server.start_thread()
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.stop()
