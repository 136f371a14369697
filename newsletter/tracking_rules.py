"""Load the machine-hit rules of ``tracking_rules.toml`` and judge one hit by them."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RULES_PATH = Path(__file__).with_name("tracking_rules.toml")
KINDS = ("open", "click")


@dataclass(frozen=True)
class AgentRule:
    id: str
    pattern: re.Pattern
    reason: str
    applies_to: frozenset[str]


@dataclass(frozen=True)
class RangeRule:
    id: str
    networks: tuple
    reason: str
    applies_to: frozenset[str]


@dataclass(frozen=True)
class Rules:
    version: str
    prefetch_s: float
    burst_window_s: float
    burst_links: int
    agents: tuple[AgentRule, ...]
    ranges: tuple[RangeRule, ...]

    def judge(self, kind: str, user_agent: str, ip: str) -> str:
        """The machine reason for a hit by its headers alone ('' = nothing says machine)."""
        for rule in self.agents:
            if kind in rule.applies_to and rule.pattern.search(user_agent):
                return rule.reason
        address = _address(ip)
        if address is not None:
            for rule in self.ranges:
                if kind in rule.applies_to and any(address in net for net in rule.networks
                                                   if net.version == address.version):
                    return rule.reason
        return ""


def _address(ip: str):
    try:
        return ipaddress.ip_address(ip)
    except ValueError:
        return None


def _applies(rule: dict) -> frozenset[str]:
    kinds = frozenset(rule.get("applies_to") or KINDS)
    unknown = kinds - set(KINDS)
    if unknown:
        raise ValueError(f"rule {rule.get('id')!r}: applies_to {sorted(unknown)}")
    return kinds


def parse(data: dict, extra_ranges: list[str] = ()) -> Rules:
    """Rules from the TOML's data (raises ValueError on a bad rule: fail at start-up)."""
    agents = []
    for rule in data.get("user_agent", []):
        if not rule.get("source"):
            raise ValueError(f"user_agent rule {rule.get('id')!r} has no source")
        agents.append(AgentRule(rule["id"], re.compile(rule["pattern"], re.IGNORECASE),
                                rule["reason"], _applies(rule)))
    ranges = []
    for rule in data.get("ip_range", []):
        if not rule.get("source"):
            raise ValueError(f"ip_range rule {rule.get('id')!r} has no source")
        ranges.append(RangeRule(rule["id"], tuple(ipaddress.ip_network(c, strict=False)
                                                  for c in rule["cidrs"]),
                                rule["reason"], _applies(rule)))
    if extra_ranges:
        ranges.append(RangeRule("proxy-ranges-file",
                                tuple(ipaddress.ip_network(c, strict=False)
                                      for c in extra_ranges),
                                "apple_mpp", frozenset({"open"})))
    timing = data.get("timing", {})
    return Rules(version=str(data.get("version", "")),
                 prefetch_s=float(timing.get("prefetch_s", 10)),
                 burst_window_s=float(timing.get("burst_window_s", 1.0)),
                 burst_links=int(timing.get("burst_links", 3)),
                 agents=tuple(agents), ranges=tuple(ranges))


def read_ranges_file(path: str) -> list[str]:
    """CIDRs from a CSV such as Apple's egress-ip-ranges.csv (first column of each line)."""
    cidrs = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        first = line.split(",", 1)[0].strip()
        if first and not first.startswith("#"):
            ipaddress.ip_network(first, strict=False)  # a bad line fails loudly
            cidrs.append(first)
    return cidrs


@lru_cache(maxsize=1)
def rules() -> Rules:
    from newsletter import conf

    extra = read_ranges_file(conf.TRACKING_PROXY_RANGES_FILE) \
        if conf.TRACKING_PROXY_RANGES_FILE else []
    return parse(tomllib.loads(RULES_PATH.read_text(encoding="utf-8")), extra)
