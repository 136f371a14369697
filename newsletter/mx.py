"""Does a domain accept mail? Asked through a small resolver interface.

The default asks DNS with dnspython (servers from SIGNUP_DNS_SERVERS, else
the system's). A domain with an MX, or without MX but with an A/AAAA record
(RFC 5321 implicit MX), accepts mail; a "null MX" (RFC 7505) or NXDOMAIN does
not. DNS trouble (timeouts, SERVFAIL) counts as "accepts": a signup is never
refused because our resolver is down.
"""

from __future__ import annotations

from typing import Protocol

import dns.exception
import dns.resolver

from newsletter import conf


class MailDomainResolver(Protocol):
    def accepts_mail(self, domain: str) -> bool: ...


class DnsResolver:
    def __init__(self, servers: list[str] | None = None, timeout: float = 3.0):
        self.resolver = dns.resolver.Resolver(configure=not servers)
        if servers:
            addresses, ports = [], {}
            for server in servers:
                host, _, port = server.rpartition(":") if server.count(":") == 1 else (
                    server, "", "")
                addresses.append(host)
                if port:
                    ports[host] = int(port)
            self.resolver.nameservers = addresses
            self.resolver.nameserver_ports = ports
        self.resolver.lifetime = timeout

    def accepts_mail(self, domain: str) -> bool:
        try:
            answer = self.resolver.resolve(domain, "MX")
            # RFC 7505 null MX: a single "0 ." says the domain takes no mail.
            return not all(str(record.exchange) == "." for record in answer)
        except dns.resolver.NXDOMAIN:
            return False
        except dns.resolver.NoAnswer:
            pass
        except (dns.exception.DNSException, OSError):
            return True
        for rdtype in ("A", "AAAA"):  # no MX: an address record is the implicit MX
            try:
                self.resolver.resolve(domain, rdtype)
                return True
            except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                continue
            except (dns.exception.DNSException, OSError):
                return True
        return False


_resolver: MailDomainResolver | None = None


def get_resolver() -> MailDomainResolver:
    global _resolver
    if _resolver is None:
        _resolver = DnsResolver(conf.SIGNUP_DNS_SERVERS or None)
    return _resolver


def set_resolver(resolver: MailDomainResolver | None) -> None:
    """Replace the resolver (None: the default again)."""
    global _resolver
    _resolver = resolver
