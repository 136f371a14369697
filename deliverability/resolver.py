"""DNS through one small interface, so checks and provider lookups can be tested.

``DnsResolver`` asks real DNS with dnspython (servers from ``DNS_SERVERS``, else
the system's). Tests point it at a local authoritative server they start. A
name that does not exist or has no such record gives an empty list; a
resolver that fails (timeout, SERVFAIL) raises ``DnsFailure``, because "no
record" and "could not ask" lead to different conclusions.
"""

from __future__ import annotations

from typing import Protocol

import dns.exception
import dns.resolver
import dns.reversename


class DnsFailure(Exception):
    """The resolver could not answer (timeout, SERVFAIL, no server)."""


class Resolver(Protocol):
    def mx(self, domain: str) -> list[str]: ...
    def txt(self, name: str) -> list[str]: ...
    def a(self, name: str) -> list[str]: ...
    def aaaa(self, name: str) -> list[str]: ...
    def ptr(self, ip: str) -> list[str]: ...


def parse_servers(servers: list[str]) -> tuple[list[str], dict[str, int]]:
    """``["127.0.0.1:5353", "192.0.2.53"]`` -> addresses and their ports."""
    addresses, ports = [], {}
    for server in servers:
        host, port = server, ""
        if server.count(":") == 1:
            host, _, port = server.partition(":")
        elif server.startswith("[") and "]:" in server:
            host, _, port = server[1:].partition("]:")
        addresses.append(host)
        if port:
            ports[host] = int(port)
    return addresses, ports


class DnsResolver:
    def __init__(self, servers: list[str] | None = None, timeout: float = 3.0):
        if servers is None:
            from deliverability.conf import DNS_SERVERS

            servers = DNS_SERVERS
        self.resolver = dns.resolver.Resolver(configure=not servers)
        if servers:
            self.resolver.nameservers, self.resolver.nameserver_ports = parse_servers(servers)
        self.resolver.lifetime = timeout
        self.resolver.cache = dns.resolver.LRUCache(10_000)

    def _query(self, name: str, rdtype: str) -> list:
        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.YXDOMAIN,
                dns.exception.DNSException) as exc:
            raise DnsFailure(f"{rdtype} {name}: {exc}") from exc

    def mx(self, domain: str) -> list[str]:
        records = sorted(self._query(domain, "MX"), key=lambda r: r.preference)
        return [r.exchange.to_text().lower().rstrip(".") for r in records]

    def txt(self, name: str) -> list[str]:
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._query(name, "TXT")]

    def a(self, name: str) -> list[str]:
        return [r.address for r in self._query(name, "A")]

    def aaaa(self, name: str) -> list[str]:
        return [r.address for r in self._query(name, "AAAA")]

    def ptr(self, ip: str) -> list[str]:
        name = dns.reversename.from_address(ip).to_text()
        return [r.target.to_text().lower().rstrip(".") for r in self._query(name, "PTR")]
