"""Recipient domain -> mailbox provider key, by MX rollup.

Throttles and the breaker count per provider, not per domain: a block from
Microsoft covers outlook.com, hotmail.de and every company on Exchange Online.
A domain belongs to a provider when ALL its MX hosts end with one of the
provider's ``mx_suffixes`` (KumoMTA's rollup rule; the providers live in
``breaker/rules.toml``); when DNS cannot answer, the provider's ``domains``
list decides; otherwise the sorted MX set is its own provider (``mx:a,b``), so
domains hosted on the same servers share a breaker; a domain without MX is its
own provider.

Answers are cached per process and in Redis (shared by every worker) for
``PROVIDER_CACHE_SECONDS``; DNS failures only for a short while.
"""

from __future__ import annotations

import hashlib
import logging
import time
from functools import lru_cache
from typing import Protocol

from deliverability.breaker.rules import Provider, load
from deliverability.resolver import DnsFailure

logger = logging.getLogger(__name__)

CACHE_SECONDS = 6 * 3600
FAILURE_CACHE_SECONDS = 300
REDIS_KEY = "deliverability:provider:{domain}"


class MXResolver(Protocol):
    def mx(self, domain: str) -> list[str]:
        """MX host names of ``domain`` ([] when it has none); raises DnsFailure."""


def _clean(name: str) -> str:
    return name.strip().lower().rstrip(".")


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[str, str], list[tuple[str, str]]]:
    providers: dict[str, Provider] = load().providers
    domains = {d.lower(): key for key, p in providers.items() for d in p.domains}
    suffixes = sorted(((s.lower(), key) for key, p in providers.items() for s in p.mx_suffixes),
                      key=lambda item: -len(item[0]))
    return domains, suffixes


def provider_for_mx(hosts: list[str]) -> str | None:
    """The provider whose suffixes cover every MX host, or None."""
    _, suffixes = _tables()
    found = set()
    for host in hosts:
        host = _clean(host)
        match = next((key for suffix, key in suffixes if host.endswith(suffix)), None)
        if match is None:
            return None
        found.add(match)
    return found.pop() if len(found) == 1 else None


KEY_MAX = 64  # the provider columns (deliveries, bounce events, tracking) hold 64 characters


def bounded_key(key: str) -> str:
    """A provider key that fits ``KEY_MAX``: a longer one (a domain of up to 253 characters,
    an MX rollup naming several long hosts) keeps its start and gains a digest of the whole,
    so the same MX set always gives the same key and two sets never share one."""
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{key[:KEY_MAX - 13]}~{digest}"


def rollup(domain: str, hosts: list[str]) -> str:
    if not hosts:
        return bounded_key(domain)
    return bounded_key(provider_for_mx(hosts)
                       or "mx:" + ",".join(sorted({_clean(h) for h in hosts})))


def _default_resolver() -> MXResolver | None:
    from deliverability.conf import PROVIDER_MX_LOOKUP

    if not PROVIDER_MX_LOOKUP:
        return None
    from deliverability.resolver import DnsResolver

    return DnsResolver(timeout=3.0)


_local: dict[str, tuple[float, str]] = {}


def provider_for_domain(domain: str, resolver: MXResolver | None = None, *,
                        use_dns: bool | None = None) -> str:
    """Provider key of a recipient domain (see the module doc)."""
    domain = _clean(domain)
    if not domain:
        return ""
    now = time.monotonic()
    cached = _local.get(domain)
    if cached and cached[0] > now:
        return cached[1]
    domains, _ = _tables()
    if resolver is None and use_dns is not False:
        resolver = _default_resolver()
    if resolver is None:
        provider, ttl = domains.get(domain, domain), CACHE_SECONDS
    else:
        provider, ttl = _lookup(domain, resolver, domains)
    _local[domain] = (now + ttl, provider)
    return provider


def _lookup(domain: str, resolver: MXResolver, domains: dict[str, str]) -> tuple[str, int]:
    redis = _redis()
    key = REDIS_KEY.format(domain=domain)
    if redis is not None:
        try:
            shared = redis.get(key)
        except Exception:  # the cache is an optimisation; Redis trouble must not stop a lookup
            shared = None
        if shared:
            return shared.decode(), CACHE_SECONDS
    try:
        provider, ttl = rollup(domain, resolver.mx(domain)), CACHE_SECONDS
    except DnsFailure as exc:
        logger.info("provider lookup for %s failed (%s): using the domain list", domain, exc)
        provider, ttl = domains.get(domain, domain), FAILURE_CACHE_SECONDS
    if provider == bounded_key(domain) and domain in domains:  # no MX, a known consumer domain
        provider = domains[domain]
    provider = bounded_key(provider)
    if redis is not None:
        try:
            redis.set(key, provider, ex=ttl)
        except Exception as exc:  # see above
            logger.debug("provider cache not written: %s", exc)
    return provider, ttl


def _redis():
    try:
        from config.redis import get_redis

        return get_redis()
    except Exception:  # outside Django (scripts): no shared cache
        return None


def providers_for_domains(domains, resolver: MXResolver | None = None, *,
                          threads: int = 32) -> dict[str, str]:
    """Many domains at once (a campaign's fan-out): cache hits first, DNS in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = sorted({_clean(d) for d in domains if d})
    if resolver is None:
        resolver = _default_resolver()
    if resolver is None or len(wanted) < 2:
        return {d: provider_for_domain(d, resolver, use_dns=resolver is not None)
                for d in wanted}
    with ThreadPoolExecutor(max_workers=min(threads, len(wanted))) as pool:
        found = pool.map(lambda d: provider_for_domain(d, resolver), wanted)
        return dict(zip(wanted, found, strict=True))


def provider_name(key: str) -> str:
    """What people read for a provider key: its ``name`` in ``breaker/rules.toml``
    ("Microsoft Outlook.com / Hotmail" for ``microsoft_consumer``); a pool-wide key,
    an MX rollup (``mx:a,b``) and a plain domain in words. The one place keys become names."""
    key = (key or "").strip()
    if key == "*":
        return "every provider"
    if not key or key == "unknown":
        return "unknown provider"
    provider = load().providers.get(key)
    if provider is not None:
        return provider.name
    if key.startswith("mx:"):
        hosts = [host for host in key[3:].split(",") if host]
        if "~" in hosts[-1]:  # shortened (bounded_key): the last host is cut
            hosts[-1] = hosts[-1].partition("~")[0] + "…"
        return "mail servers " + ", ".join(hosts)
    return key


def provider_column(obj) -> str:
    """An admin list column: the provider's name (``list_display``; the filter keeps keys)."""
    return provider_name(getattr(obj, "provider", ""))


provider_column.short_description = "provider"
provider_column.admin_order_field = "provider"


def provider_for_address(address: str, resolver: MXResolver | None = None) -> str:
    return provider_for_domain(address.rpartition("@")[2], resolver)


def forget() -> None:
    """Drop the per-process cache (tests; after editing providers)."""
    _local.clear()
    _tables.cache_clear()
