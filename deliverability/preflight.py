"""Pre-flight reputation checks: know your own setup before a provider tells you.

For each relay IP: reverse DNS exists, resolves back (FCrDNS) and matches the
HELO name; for each sending domain: SPF authorises every relay IP within 10
DNS lookups, the DKIM key in DNS is ours and at least 1024 bits, DMARC exists
and aligns with the From domain; no relay IP or domain is on the configured
DNS blocklists (a ``127.255.255.x`` answer is the blocklist refusing our
resolver, reported as ``unknown``, never as a listing); our relay is not an
open relay. All DNS goes through ``deliverability.resolver``.

Each check returns ``CheckResult(check, target, status, detail)`` with status
``ok``, ``warn``, ``fail`` or ``unknown`` (could not tell).
"""

from __future__ import annotations

import base64
import ipaddress
import re
import smtplib
from dataclasses import asdict, dataclass, field

from deliverability.resolver import DnsFailure, Resolver

OK, WARN, FAIL, UNKNOWN = "ok", "warn", "fail", "unknown"
SPF_LOOKUP_LIMIT = 10
DEFAULT_IP_BLOCKLISTS = ("zen.spamhaus.org",)
DEFAULT_DOMAIN_BLOCKLISTS = ("dbl.spamhaus.org",)
_GENERIC_PTR = re.compile(r"(\d{1,3}[-.]){3}\d{1,3}|dynamic|dsl|pool|dhcp|dial", re.I)


@dataclass
class CheckResult:
    check: str
    target: str
    status: str
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class RelayTarget:
    ip: str
    helo: str = ""
    host: str = ""
    port: int = 25


@dataclass
class DomainTarget:
    domain: str
    dkim: dict[str, str] = field(default_factory=dict)  # selector -> our public key, base64 DER


# --- FCrDNS ------------------------------------------------------------------------

def check_fcrdns(resolver: Resolver, relay: RelayTarget) -> CheckResult:
    ip, name = relay.ip, "fcrdns"
    try:
        names = resolver.ptr(ip)
    except DnsFailure as exc:
        return CheckResult(name, ip, UNKNOWN, f"reverse DNS lookup failed: {exc}")
    if not names:
        return CheckResult(name, ip, FAIL, f"{ip} has no reverse DNS (PTR) record; providers "
                           "refuse or spam-folder mail from such IPs")
    if len(names) > 1:
        return CheckResult(name, ip, WARN, f"{ip} has {len(names)} PTR records: "
                           f"{', '.join(names)}; keep exactly one")
    ptr = names[0]
    try:
        forward = resolver.aaaa(ptr) if ":" in ip else resolver.a(ptr)
    except DnsFailure as exc:
        return CheckResult(name, ip, UNKNOWN, f"PTR {ptr}: forward lookup failed: {exc}")
    if str(ipaddress.ip_address(ip)) not in {str(ipaddress.ip_address(a)) for a in forward}:
        return CheckResult(name, ip, FAIL, f"PTR {ptr} does not resolve back to {ip} "
                           f"(it gives {', '.join(forward) or 'nothing'})")
    if relay.helo and relay.helo.lower().rstrip(".") != ptr:
        return CheckResult(name, ip, FAIL, f"HELO name {relay.helo!r} does not match the reverse "
                           f"DNS name {ptr!r}")
    if _GENERIC_PTR.search(ptr.split(".")[0]):
        return CheckResult(name, ip, WARN, f"PTR {ptr} looks generic (dynamic/pool); use a "
                           "name of your own mail server")
    return CheckResult(name, ip, OK, f"{ip} <-> {ptr}" + (" = HELO" if relay.helo else ""))


# --- SPF ---------------------------------------------------------------------------------

class _SpfError(Exception):
    pass


def _spf_record(resolver: Resolver, domain: str) -> str | None:
    records = [t for t in resolver.txt(domain) if t.lower().startswith("v=spf1")]
    if len(records) > 1:
        raise _SpfError(f"{domain} has {len(records)} SPF records (must be one)")
    return records[0] if records else None


def _ip_in(ip: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(ip) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


def _spf_eval(resolver: Resolver, domain: str, ip: str, counter: list[int], depth: int = 0) -> str:
    """RFC 7208 check_host, reduced to the mechanisms senders publish. Returns a result word."""
    if depth > 10:
        raise _SpfError("SPF include loop")
    record = _spf_record(resolver, domain)
    if record is None:
        return "none"
    redirect = None
    for term in record.split()[1:]:
        qualifier = "+"
        if term[0] in "+-~?":
            qualifier, term = term[0], term[1:]
        mechanism, _, value = term.partition(":")
        mechanism = mechanism.lower()
        if "=" in mechanism:
            key, _, target = term.partition("=")
            if key.lower() == "redirect":
                redirect = target
            continue
        if mechanism in ("include", "a", "mx", "ptr", "exists") or mechanism.startswith(("a/",
                                                                                        "mx/")):
            counter[0] += 1
            if counter[0] > SPF_LOOKUP_LIMIT:
                raise _SpfError(f"more than {SPF_LOOKUP_LIMIT} DNS lookups (permerror)")
        matched = False
        if mechanism == "all":
            matched = True
        elif mechanism in ("ip4", "ip6"):
            matched = _ip_in(ip, value)
        elif mechanism.startswith("a"):
            name, _, prefix = (value or domain).partition("/")
            addresses = resolver.aaaa(name) if ":" in ip else resolver.a(name)
            matched = any(_ip_in(ip, f"{a}/{prefix}" if prefix else a) for a in addresses)
        elif mechanism.startswith("mx"):
            name = (value or domain).partition("/")[0]
            for host in resolver.mx(name):
                addresses = resolver.aaaa(host) if ":" in ip else resolver.a(host)
                if any(_ip_in(ip, a) for a in addresses):
                    matched = True
        elif mechanism == "include":
            matched = _spf_eval(resolver, value, ip, counter, depth + 1) == "pass"
        elif mechanism == "exists":
            matched = bool(resolver.a(value))
        if matched:
            return {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}[qualifier]
    if redirect:
        counter[0] += 1
        if counter[0] > SPF_LOOKUP_LIMIT:
            raise _SpfError(f"more than {SPF_LOOKUP_LIMIT} DNS lookups (permerror)")
        return _spf_eval(resolver, redirect, ip, counter, depth + 1)
    return "neutral"


def check_spf(resolver: Resolver, domain: str, ips: list[str]) -> list[CheckResult]:
    results = []
    for ip in ips:
        counter = [0]
        try:
            verdict = _spf_eval(resolver, domain, ip, counter)
        except _SpfError as exc:
            results.append(CheckResult("spf", f"{domain} {ip}", FAIL, str(exc)))
            continue
        except DnsFailure as exc:
            results.append(CheckResult("spf", f"{domain} {ip}", UNKNOWN, str(exc)))
            continue
        if verdict == "pass":
            results.append(CheckResult("spf", f"{domain} {ip}", OK,
                                       f"SPF of {domain} authorises {ip} ({counter[0]} lookups)"))
        elif verdict == "none":
            results.append(CheckResult("spf", f"{domain} {ip}", FAIL, f"{domain} has no SPF "
                                       "record"))
        else:
            results.append(CheckResult("spf", f"{domain} {ip}", FAIL, f"SPF of {domain} gives "
                                       f"{verdict} for {ip}: add ip4:{ip} to it"))
    return results


# --- DKIM ------------------------------------------------------------------------------------

def _tags(record: str) -> dict[str, str]:
    tags = {}
    for part in record.split(";"):
        key, _, value = part.strip().partition("=")
        if key:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def _rsa_bits(der_b64: str) -> int | None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(base64.b64decode(der_b64))
    except (ValueError, TypeError):
        return None
    return key.key_size if isinstance(key, rsa.RSAPublicKey) else 0


def check_dkim(resolver: Resolver, domain: str, selector: str, our_key_b64: str) -> CheckResult:
    name = f"{selector}._domainkey.{domain}"
    try:
        records = [t for t in resolver.txt(name) if "p=" in t]
    except DnsFailure as exc:
        return CheckResult("dkim", name, UNKNOWN, str(exc))
    if not records:
        return CheckResult("dkim", name, FAIL, f"no DKIM key published at {name}")
    tags = _tags(records[0])
    published = tags.get("p", "")
    if not published:
        return CheckResult("dkim", name, FAIL, f"the key at {name} is revoked (empty p=)")
    if published != "".join(our_key_b64.split()):
        return CheckResult("dkim", name, FAIL, f"the key at {name} is not the one we sign with: "
                           "mail will fail DKIM; publish our public key")
    bits = _rsa_bits(published)
    if tags.get("k", "rsa") == "rsa":
        if bits is None:
            return CheckResult("dkim", name, FAIL, "the published key does not parse")
        if bits < 1024:
            return CheckResult("dkim", name, FAIL, f"RSA key of {bits} bits: at least 1024 "
                               "(2048 recommended)")
    return CheckResult("dkim", name, OK, f"key matches ours ({bits or 'ed25519'} bits)")


# --- DMARC ---------------------------------------------------------------------------------

def organisational_domain(domain: str) -> str:
    """Last two labels, three under a two-letter country code with a short second level."""
    labels = domain.lower().rstrip(".").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def check_dmarc(resolver: Resolver, from_domain: str, dkim_domain: str = "",
                return_path_domain: str = "") -> CheckResult:
    org = organisational_domain(from_domain)
    target = f"_dmarc.{from_domain}"
    try:
        records = [t for t in resolver.txt(target) if t.lower().startswith("v=dmarc1")]
        if not records and org != from_domain:
            target = f"_dmarc.{org}"
            records = [t for t in resolver.txt(target) if t.lower().startswith("v=dmarc1")]
    except DnsFailure as exc:
        return CheckResult("dmarc", from_domain, UNKNOWN, str(exc))
    if not records:
        return CheckResult("dmarc", from_domain, FAIL, f"no DMARC record at _dmarc.{from_domain}:"
                           " Gmail and Yahoo require one for bulk senders (p=none is enough)")
    policy = _tags(records[0]).get("p", "")
    aligned = [d for d in (dkim_domain, return_path_domain)
               if d and organisational_domain(d) == org]
    if (dkim_domain or return_path_domain) and not aligned:
        return CheckResult("dmarc", from_domain, FAIL, f"DMARC p={policy or '?'} but neither the "
                           f"DKIM domain ({dkim_domain or '-'}) nor the return path "
                           f"({return_path_domain or '-'}) aligns with {from_domain}")
    return CheckResult("dmarc", from_domain, OK, f"DMARC p={policy or '?'} at {target}"
                       + (f", aligned through {', '.join(aligned)}" if aligned else ""))


# --- Blocklists ------------------------------------------------------------------------------

def _listing(answers: list[str], zone: str, target: str, name: str) -> CheckResult:
    if not answers:
        return CheckResult(name, f"{target} @ {zone}", OK, f"not listed on {zone}")
    refused = [a for a in answers if a.startswith("127.255.255.")]
    if refused:
        return CheckResult(name, f"{target} @ {zone}", UNKNOWN, f"{zone} refused the query "
                           f"({refused[0]}): a resolver error, not a listing; use your own "
                           "recursive resolver (DNS_SERVERS) or the blocklist's paid access")
    return CheckResult(name, f"{target} @ {zone}", FAIL, f"listed on {zone} "
                       f"({', '.join(sorted(answers))}): request delisting before sending")


def check_ip_blocklists(resolver: Resolver, ip: str,
                        zones: tuple[str, ...] = DEFAULT_IP_BLOCKLISTS) -> list[CheckResult]:
    address = ipaddress.ip_address(ip)
    if address.version == 4:
        reversed_ip = ".".join(reversed(ip.split(".")))
    else:
        reversed_ip = ".".join(reversed(address.exploded.replace(":", "")))
    results = []
    for zone in zones:
        try:
            answers = resolver.a(f"{reversed_ip}.{zone}")
        except DnsFailure as exc:
            results.append(CheckResult("blocklist", f"{ip} @ {zone}", UNKNOWN, str(exc)))
            continue
        results.append(_listing(answers, zone, ip, "blocklist"))
    return results


def check_domain_blocklists(resolver: Resolver, domain: str,
                            zones: tuple[str, ...] = DEFAULT_DOMAIN_BLOCKLISTS
                            ) -> list[CheckResult]:
    results = []
    for zone in zones:
        try:
            answers = resolver.a(f"{domain}.{zone}")
        except DnsFailure as exc:
            results.append(CheckResult("blocklist", f"{domain} @ {zone}", UNKNOWN, str(exc)))
            continue
        results.append(_listing(answers, zone, domain, "blocklist"))
    return results


# --- Open relay --------------------------------------------------------------------------------

def check_open_relay(host: str, port: int, *, timeout: float = 10.0,
                     foreign_from: str = "relay-test@example.net",
                     foreign_to: str = "relay-test@example.com") -> CheckResult:
    """Without authentication, our relay must refuse mail for a foreign domain."""
    target = f"{host}:{port}"
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as session:
            session.ehlo("preflight.invalid")
            code, _ = session.mail(foreign_from)
            if code >= 400:
                return CheckResult("open_relay", target, OK, f"MAIL FROM refused ({code})")
            code, text = session.rcpt(foreign_to)
            session.rset()
    except (OSError, smtplib.SMTPException) as exc:
        return CheckResult("open_relay", target, UNKNOWN, f"could not test: {exc}")
    if code >= 400:
        return CheckResult("open_relay", target, OK, f"refuses RCPT TO a foreign domain without "
                           f"authentication ({code})")
    return CheckResult("open_relay", target, FAIL, f"accepted RCPT TO {foreign_to} without "
                       f"authentication ({code} {text.decode(errors='replace')}): an open "
                       "relay is abused by spammers within hours")


# --- All ----------------------------------------------------------------------------------

def run_checks(resolver: Resolver, *, relays: list[RelayTarget], domains: list[DomainTarget],
               from_domains: list[str] = (), return_path_domain: str = "",
               ip_blocklists: tuple[str, ...] = DEFAULT_IP_BLOCKLISTS,
               domain_blocklists: tuple[str, ...] = DEFAULT_DOMAIN_BLOCKLISTS,
               open_relay: bool = True) -> list[CheckResult]:
    results: list[CheckResult] = []
    ips = [r.ip for r in relays if r.ip]
    for relay in relays:
        if relay.ip:
            results.append(check_fcrdns(resolver, relay))
            results.extend(check_ip_blocklists(resolver, relay.ip, ip_blocklists))
        if open_relay and relay.host:
            results.append(check_open_relay(relay.host, relay.port))
    for target in domains:
        if ips:
            results.extend(check_spf(resolver, return_path_domain or target.domain, ips))
        for selector, key in target.dkim.items():
            results.append(check_dkim(resolver, target.domain, selector, key))
        results.extend(check_domain_blocklists(resolver, target.domain, domain_blocklists))
    dkim_domains = [t.domain for t in domains if t.dkim]
    for from_domain in from_domains:
        aligned_dkim = next((d for d in dkim_domains if organisational_domain(d)
                             == organisational_domain(from_domain)), dkim_domains[0]
                            if dkim_domains else "")
        results.append(check_dmarc(resolver, from_domain, aligned_dkim, return_path_domain))
    return results
