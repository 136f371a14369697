"""Explain the ``Received:`` hops of a message (RFC 5321 section 4.4).

Each receiving server records, in its FROM clause, the name the client gave in
HELO/EHLO and, in parentheses, what it learnt from the TCP connection: the
reverse-DNS name it found (if any) and the IP address. Servers spell this
differently; the formats read here:

- Postfix / Sendmail: ``from HELO (RDNS [IP])``, ``from HELO (unknown [IP])``
- Exim: ``from RDNS ([IP] helo=HELO)``, ``from RDNS ([IP])`` (HELO = RDNS),
  ``from [IP] (helo=HELO)``
- Gmail: ``from HELO (RDNS. [IP])``
- Exchange / Office 365: ``from HELO (IP)`` (no reverse DNS recorded)
- bare: ``from HELO ([IP])`` (no reverse DNS recorded)

So an operator handed a spam sample can tell "sent through us" from "someone
else using our IP or name".
"""

from __future__ import annotations

import email
import email.policy
import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime

_FROM = re.compile(r"^\s*from\s+(?P<name>\S+)(?:\s*\((?P<paren>(?:[^()]|\([^()]*\))*)\))?",
                   re.IGNORECASE)
_BY = re.compile(r"\bby\s+(?P<by>[^\s;()]+)", re.IGNORECASE)
_WITH = re.compile(r"\bwith\s+(?P<with>[A-Za-z0-9_-]+)", re.IGNORECASE)
_ID = re.compile(r"\bid\s+(?P<id>[^\s;]+)", re.IGNORECASE)
_BRACKET_IP = re.compile(r"\[(?:IPv6:)?(?P<ip>[0-9A-Fa-f:.]+)\]")
_BARE_IP = re.compile(
    r"(?<![\w.:])(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{0,4}){2,7})"
    r"(?![\w.:])")
_HELO = re.compile(r"\bhelo\s*=\s*(?P<helo>[^\s)\]]+)", re.IGNORECASE)


_INTERNAL = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16",
    "100.64.0.0/10", "::1/128", "fc00::/7", "fe80::/10")]


def _internal(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return any(address.version == n.version and address in n for n in _INTERNAL)


@dataclass
class Hop:
    helo: str | None
    rdns: str | None
    ip: str | None
    by: str | None
    time: str | None
    flags: list[str] = field(default_factory=list)
    protocol: str | None = None
    id: str | None = None
    raw: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def explain(self) -> str:
        parts = [f"HELO {self.helo!r}" if self.helo else "no HELO name recorded"]
        parts.append(f"reverse DNS {self.rdns!r}" if self.rdns else "no reverse DNS recorded")
        parts.append(f"IP {self.ip}" if self.ip else "no IP recorded")
        if self.by:
            parts.append(f"received by {self.by}")
        if self.time:
            parts.append(f"at {self.time}")
        text = ", ".join(parts)
        notes = [FLAG_TEXT[f] for f in self.flags if f in FLAG_TEXT]
        return text + ("".join(f"\n    - {n}" for n in notes))


FLAG_TEXT = {
    "no-rdns": "the receiver recorded no reverse DNS name for the IP",
    "helo-mismatch": "the HELO name differs from the reverse DNS name the receiver found",
    "helo-ip-literal": "the client gave an IP literal, not a name, in HELO",
    "may-be-forged": "the receiver marked the reverse DNS as possibly forged",
    "our-relay": "the IP is one of our relays",
    "private-ip": "a private or loopback address (an internal hop)",
}


def _clean_name(name: str | None) -> str | None:
    if not name:
        return None
    name = name.strip().strip("[]").rstrip(".").lower()
    return None if name in ("", "unknown") else name


def _valid_ip(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_received(value: str) -> Hop:
    """One ``Received:`` value (unfolded) -> a hop. Never raises."""
    text = " ".join(value.split())
    header, _, date_text = text.rpartition(";")
    if not header:
        header, date_text = text, ""
    helo = rdns = ip = None
    flags: list[str] = []
    match = _FROM.match(header)
    if match:
        name, paren = match.group("name"), match.group("paren") or ""
        name_ip = _valid_ip(name.strip("[]").removeprefix("IPv6:"))
        bracket = _BRACKET_IP.search(paren)
        ip = _valid_ip(bracket.group("ip")) if bracket else None
        if ip is None and not bracket:
            bare = _BARE_IP.search(paren)
            ip = _valid_ip(bare.group("ip")) if bare else None
        helo_in_paren = _HELO.search(paren)
        if helo_in_paren:  # Exim: the name outside is what DNS said, helo= what the client said
            helo = _clean_name(helo_in_paren.group("helo"))
            rdns = None if name_ip else _clean_name(name)
            ip = ip or name_ip
        elif bracket:  # Postfix/Sendmail/Gmail: the name inside is the reverse DNS, if any
            before = paren[: bracket.start()].strip()
            rdns = _clean_name(before.split()[-1]) if before else None
            helo = name if not name_ip else None
        elif name_ip:
            ip, helo = name_ip, None
        else:  # Exchange: "from HELO (IP)" records no reverse DNS
            helo = name
        if helo and _valid_ip(helo.strip("[]")):
            flags.append("helo-ip-literal")
        helo = _clean_name(helo) if helo else None
        if "may be forged" in paren.lower():
            flags.append("may-be-forged")
    by = _BY.search(header)
    protocol = _WITH.search(header)
    ident = _ID.search(header)
    when = None
    if date_text.strip():
        try:
            when = parsedate_to_datetime(date_text.strip()).isoformat()
        except (TypeError, ValueError, IndexError):
            when = None
    if match:
        if rdns is None:
            flags.append("no-rdns")
        elif helo and helo != rdns:
            flags.append("helo-mismatch")
    if ip and _internal(ip):
        flags.append("private-ip")
    return Hop(helo=helo, rdns=rdns, ip=ip, by=by.group("by").rstrip(".").lower() if by else None,
               time=when, flags=flags, protocol=protocol.group("with") if protocol else None,
               id=ident.group("id") if ident else None, raw=value.strip())


@dataclass
class OurIdentity:
    """What marks a message as sent through us, and what the pre-flight checks look at."""

    relay_ips: set[str] = field(default_factory=set)
    message_id_domains: set[str] = field(default_factory=set)
    verp_decode: Callable[[str], int | None] | None = None
    dkim_domains: set[str] = field(default_factory=set)
    dkim_verify: Callable[[bytes], bool] | None = None
    # For deliverability.preflight: relays (RelayTarget), domains (DomainTarget).
    relays: list = field(default_factory=list)
    domains: list = field(default_factory=list)
    from_domains: list[str] = field(default_factory=list)
    return_path_domain: str = ""


@dataclass
class Explanation:
    hops: list[Hop]
    ours: dict

    def as_dict(self) -> dict:
        return {"hops": [h.as_dict() for h in self.hops], "ours": self.ours}


def _received_values(raw: bytes | str) -> tuple[list[str], email.message.Message | None]:
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    try:
        message = email.message_from_bytes(data, policy=email.policy.compat32)
        values = [str(v) for v in message.get_all("Received", [])]
    except Exception:  # a broken message still gets its Received lines read below
        message, values = None, []
    if not values:  # a pasted header block may not parse as a message
        text = data.decode("utf-8", "replace").replace("\r\n", "\n")
        unfolded = re.sub(r"\n[ \t]+", " ", text)
        values = [line.split(":", 1)[1] for line in unfolded.split("\n")
                  if line.lower().startswith("received:")]
    return values, message


def explain(raw: bytes | str, ours: OurIdentity | None = None) -> Explanation:
    """Every hop, newest first, and whether the message carries our marks."""
    ours = ours or OurIdentity()
    values, message = _received_values(raw)
    hops = [parse_received(v) for v in values]
    for hop in hops:
        if hop.ip and hop.ip in ours.relay_ips:
            hop.flags.append("our-relay")
    verdict: dict = {"relay_ip": any("our-relay" in h.flags for h in hops)}
    if message is not None:
        message_id = str(message.get("Message-ID", "")).strip().strip("<>").lower()
        verdict["message_id"] = bool(message_id) and message_id.rpartition("@")[2] in {
            d.lower() for d in ours.message_id_domains}
        return_path = str(message.get("Return-Path", "")).strip().strip("<>")
        verdict["verp"] = bool(ours.verp_decode and return_path
                               and ours.verp_decode(return_path) is not None)
        dkim_domains = re.findall(r"\bd=([^;\s]+)", " ".join(
            str(v) for v in message.get_all("DKIM-Signature", [])))
        ours_signed = [d for d in dkim_domains if d.lower() in {x.lower() for x in
                                                               ours.dkim_domains}]
        verdict["dkim_domain"] = bool(ours_signed)
        verdict["dkim_valid"] = None
        if ours_signed and ours.dkim_verify is not None:
            data = raw.encode() if isinstance(raw, str) else raw
            verdict["dkim_valid"] = bool(ours.dkim_verify(data))
    verdict["sent_through_us"] = bool(
        verdict.get("relay_ip") and (verdict.get("verp") or verdict.get("message_id")
                                     or verdict.get("dkim_valid")))
    return Explanation(hops=hops, ours=verdict)


def summary(explanation: Explanation) -> str:
    lines = []
    count = len(explanation.hops)
    for index, hop in enumerate(explanation.hops):
        lines.append(f"hop {count - index} (newest first: {index + 1}): {hop.explain()}")
    ours = explanation.ours
    marks = [name for name in ("relay_ip", "message_id", "verp", "dkim_valid") if ours.get(name)]
    if ours.get("sent_through_us"):
        lines.append(f"Verdict: sent through us (marks: {', '.join(marks)}).")
    elif ours.get("relay_ip"):
        lines.append("Verdict: it passed one of our relay IPs but carries none of our marks "
                     "(Message-ID, VERP return path, DKIM signature): someone else may be using "
                     "the IP, or the message was altered.")
    else:
        lines.append("Verdict: no hop is one of our relays"
                     + (f" (marks found: {', '.join(marks)})" if marks else "")
                     + ": not sent through us; someone may be using our name.")
    return "\n".join(lines)


def relay_ips_from(values: Iterable[str]) -> set[str]:
    return {ip for ip in (_valid_ip(v) for v in values) if ip}
