"""Does a domain accept mail? Asked through a small resolver interface.

The default asks DNS with dnspython (servers from SIGNUP_DNS_SERVERS, else
the system's). A domain with an MX, or without MX but with an A/AAAA record
(RFC 5321 implicit MX), accepts mail; a "null MX" (RFC 7505) or NXDOMAIN does
not. DNS trouble (timeouts, SERVFAIL) counts as "accepts": a signup is never
refused because our resolver is down.
"""

from __future__ import annotations

from typing import Protocol

from deliverability.resolver import DnsFailure
from deliverability.resolver import DnsResolver as _Dns
from newsletter import conf


class MailDomainResolver(Protocol):
    def accepts_mail(self, domain: str) -> bool: ...


class DnsResolver:
    """``accepts_mail`` over deliverability's DNS interface (one DNS client for the project)."""

    def __init__(self, servers: list[str] | None = None, timeout: float = 3.0):
        # No servers of its own: the project's DNS_SERVERS, else the system's.
        self.dns = _Dns(servers=servers or None, timeout=timeout)

    def accepts_mail(self, domain: str) -> bool:
        try:
            hosts = self.dns.mx(domain)
            if hosts:
                # RFC 7505 null MX: a single "0 ." says the domain takes no mail.
                return not all(host in ("", ".") for host in hosts)
            # No MX (or no such domain): an address record is the implicit MX.
            return bool(self.dns.a(domain) or self.dns.aaaa(domain))
        except DnsFailure:
            return True


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
