"""Recipient domain -> provider key ("google", "microsoft", or the domain itself).

Throttles and the circuit breaker count per provider, not per domain: a block
from Microsoft covers outlook.com, hotmail.de and every company on Exchange
Online. For now the answer comes from a shipped table of domains and MX host
suffixes; ``provider_for_domain`` takes an optional ``MXResolver`` (the
provider-breaker issue adds a DNS one with MX rollup). Unknown domains are
their own provider. Lookups are cached per process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

# Domains whose provider is known without DNS.
DOMAINS: dict[str, str] = {
    **dict.fromkeys(["gmail.com", "googlemail.com"], "google"),
    **dict.fromkeys(["outlook.com", "hotmail.com", "hotmail.de", "hotmail.fr", "hotmail.co.uk",
                     "live.com", "live.de", "live.fr", "msn.com", "outlook.de", "outlook.fr"],
                    "microsoft"),
    **dict.fromkeys(["yahoo.com", "yahoo.de", "yahoo.fr", "yahoo.co.uk", "ymail.com",
                     "aol.com", "aol.de"], "yahoo"),
    **dict.fromkeys(["icloud.com", "me.com", "mac.com"], "apple"),
    **dict.fromkeys(["gmx.de", "gmx.net", "gmx.at", "gmx.ch", "gmx.com", "web.de",
                     "mail.com"], "united-internet"),
    **dict.fromkeys(["t-online.de", "magenta.de"], "t-online"),
    **dict.fromkeys(["bluewin.ch", "swisscom.com"], "swisscom"),
    **dict.fromkeys(["orange.fr", "wanadoo.fr"], "orange"),
    **dict.fromkeys(["free.fr"], "free"),
    **dict.fromkeys(["proton.me", "protonmail.com", "pm.me"], "proton"),
    **dict.fromkeys(["mail.ru", "inbox.ru", "list.ru", "bk.ru"], "mail-ru"),
    **dict.fromkeys(["yandex.ru", "yandex.com", "ya.ru"], "yandex"),
}

# MX host suffixes that reveal the provider behind a custom domain.
MX_SUFFIXES: dict[str, str] = {
    "google.com": "google",
    "googlemail.com": "google",
    "protection.outlook.com": "microsoft",
    "outlook.com": "microsoft",
    "yahoodns.net": "yahoo",
    "icloud.com": "apple",
    "gmx.net": "united-internet",
    "web.de": "united-internet",
    "t-online.de": "t-online",
    "bluewin.ch": "swisscom",
    "protonmail.ch": "proton",
    "yandex.net": "yandex",
}


class MXResolver(Protocol):
    def mx_hosts(self, domain: str) -> list[str]:
        """MX host names of ``domain`` (empty when unknown); must not raise."""


def provider_for_mx(hosts: list[str]) -> str | None:
    for host in hosts:
        host = host.lower().rstrip(".")
        for suffix, key in MX_SUFFIXES.items():
            if host == suffix or host.endswith("." + suffix):
                return key
    return None


def provider_for_domain(domain: str, resolver: MXResolver | None = None) -> str:
    domain = domain.strip().lower().rstrip(".")
    if resolver is None:
        return _table_lookup(domain)
    known = DOMAINS.get(domain)
    if known:
        return known
    return provider_for_mx(resolver.mx_hosts(domain)) or domain


@lru_cache(maxsize=65536)
def _table_lookup(domain: str) -> str:
    return DOMAINS.get(domain, domain)


def provider_for_address(address: str, resolver: MXResolver | None = None) -> str:
    return provider_for_domain(address.rpartition("@")[2], resolver)
