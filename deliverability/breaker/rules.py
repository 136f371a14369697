"""Load, compile and match the breaker rules of ``rules.toml``."""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

RULES_PATH = Path(__file__).with_name("rules.toml")

CLASSES = ("throttle", "connection", "reputation", "block", "auth_config", "content",
           "recipient_hard", "recipient_soft", "transient", "unknown_5xx")
REACTIONS = ("throttle", "limit_connections", "pause", "none")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([smhd])$")
_REPLY_PREFIX = re.compile(r"^\s*(\d{3})([ -])")
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def duration(text: str) -> int:
    """Seconds in ``30s``, ``10m``, ``4h``, ``7d``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"bad duration {text!r} (use e.g. 30s, 10m, 4h, 7d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Trigger:
    count: int
    window: int  # seconds


@dataclass(frozen=True)
class BreakerClass:
    name: str
    reaction: str
    trigger: Trigger | None
    ladder: tuple[str, ...]  # durations or "manual"
    after_ladder: str = ""   # "manual", or empty: the last step repeats


@dataclass(frozen=True)
class Rule:
    id: str
    providers: tuple[str, ...]
    pattern: re.Pattern
    klass: str
    code: re.Pattern | None = None
    trigger: Trigger | None = None
    ladder: tuple[str, ...] = ()
    tag: str = ""

    def matches(self, provider: str, code: int, normalised: str) -> bool:
        if self.providers and provider not in self.providers:
            return False
        if self.code is not None and not self.code.search(str(code)):
            return False
        return bool(self.pattern.search(normalised))


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    mx_suffixes: tuple[str, ...]
    domains: tuple[str, ...]
    postmaster_url: str = ""
    delisting_url: str = ""
    rate_per_min: float | None = None
    max_connections: int | None = None


@dataclass(frozen=True)
class Ruleset:
    version: int
    classes: dict[str, BreakerClass]
    providers: dict[str, Provider]
    rules: tuple[Rule, ...]
    rate_per_min: float
    max_connections: int
    probe_messages: int
    probe_interval: int
    success_min: int
    fail_on: frozenset[str]
    recovery_start_pct: int
    recovery_step_pct: int
    recovery_step_every: int
    decay_clean: int
    decay_block_clean: int
    pool_wide_providers: int
    pool_wide_window: int
    raw: dict = field(repr=False, default_factory=dict)

    def trigger_for(self, rule: Rule) -> Trigger | None:
        return rule.trigger or self.classes[rule.klass].trigger

    def ladder_for(self, rule: Rule) -> tuple[str, ...]:
        return rule.ladder or self.classes[rule.klass].ladder


def _trigger(data: dict | None) -> Trigger | None:
    if not data:
        return None
    return Trigger(count=int(data["count"]), window=duration(data["window"]))


def parse(data: dict) -> Ruleset:
    classes = {
        name: BreakerClass(
            name=name, reaction=spec["reaction"], trigger=_trigger(spec.get("trigger")),
            ladder=tuple(spec.get("ladder", ())), after_ladder=spec.get("after_ladder", ""),
        )
        for name, spec in data["classes"].items()
    }
    providers = {
        key: Provider(
            key=key, name=spec.get("name", key),
            mx_suffixes=tuple(spec.get("mx_suffixes", ())), domains=tuple(spec.get("domains", ())),
            postmaster_url=spec.get("postmaster_url", ""),
            delisting_url=spec.get("delisting_url", ""),
            rate_per_min=spec.get("rate_per_min"), max_connections=spec.get("max_connections"),
        )
        for key, spec in data["providers"].items()
    }
    rules = tuple(
        Rule(
            id=spec["id"], providers=tuple(spec.get("providers", ())),
            pattern=re.compile(spec["pattern"], re.IGNORECASE), klass=spec["class"],
            code=re.compile(spec["code"]) if spec.get("code") else None,
            trigger=_trigger(spec.get("trigger")), ladder=tuple(spec.get("ladder", ())),
            tag=spec.get("tag", ""),
        )
        for spec in data["rules"]
    )
    half_open, recovery, decay = data["half_open"], data["recovery"], data["decay"]
    return Ruleset(
        version=int(data["version"]), classes=classes, providers=providers, rules=rules,
        rate_per_min=float(data["defaults"]["rate_per_min"]),
        max_connections=int(data["defaults"]["max_connections"]),
        probe_messages=int(half_open["probe_messages"]),
        probe_interval=duration(half_open["probe_interval"]),
        success_min=int(half_open["success_min"]), fail_on=frozenset(half_open["fail_on"]),
        recovery_start_pct=int(recovery["start_pct"]), recovery_step_pct=int(recovery["step_pct"]),
        recovery_step_every=duration(recovery["step_every"]),
        decay_clean=duration(decay["clean"]), decay_block_clean=duration(decay["block_clean"]),
        pool_wide_providers=int(data["pool_wide"]["providers"]),
        pool_wide_window=duration(data["pool_wide"]["window"]),
        raw=data,
    )


@lru_cache(maxsize=1)
def shipped(path: Path = RULES_PATH) -> dict:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def merge_overrides(data: dict, overrides: list[dict]) -> dict:
    """Operators' rules replace shipped ones with the same id; new ones go first."""
    by_id = {rule["id"]: rule for rule in overrides}
    rules = [by_id.pop(rule["id"], rule) for rule in data["rules"]]
    return {**data, "rules": list(by_id.values()) + rules}


_loaded: tuple[float, Ruleset] | None = None
RELOAD_SECONDS = 60.0


def load(path: Path = RULES_PATH) -> Ruleset:
    """The shipped rules with the admin's overrides, re-read at most once a minute."""
    global _loaded
    now = time.monotonic()
    if _loaded is not None and _loaded[0] > now:
        return _loaded[1]
    ruleset = parse(merge_overrides(shipped(path), _override_data()))
    _loaded = (now + RELOAD_SECONDS, ruleset)
    return ruleset


def reload() -> None:
    """Forget the loaded rules (after an override is saved)."""
    global _loaded
    _loaded = None


def _override_data() -> list[dict]:
    try:
        from deliverability.models import BreakerRuleOverride

        return [o.as_rule_data() for o in BreakerRuleOverride.objects.filter(enabled=True)]
    except Exception:  # no database yet (start-up, migrations, scripts): the shipped rules
        return []


def normalise_reply(code: int, text: str) -> str:
    """One line ``CODE ENH text``: multi-line prefixes and repeated enhanced codes removed."""
    lines = (text or "").replace("\r", "").split("\n")
    words, enhanced = [], ""
    for line in lines:
        line = _REPLY_PREFIX.sub("", line).strip()
        found = _ENHANCED.match(line)
        if found:
            enhanced = enhanced or found.group(1)
            line = line[found.end():].strip()
        if line:
            words.append(line)
    if not enhanced:
        found = _ENHANCED.search(" ".join(words))
        enhanced = found.group(1) if found else ""
    return " ".join(part for part in (str(code), enhanced, " ".join(" ".join(words).split()))
                    if part)


# When no rule matches, the bounce classifier's fine reason still says something.
REASON_TO_CLASS = {
    "blocked": "block", "rejected": "block", "norelaying": "block", "badreputation": "reputation",
    "toomanyconn": "connection", "speeding": "throttle", "ratelimited": "throttle",
    "spamdetected": "content", "contenterror": "content", "virusdetected": "content",
    "policyviolation": "content", "filtered": "content",
    "authfailure": "auth_config", "requireptr": "auth_config", "securityerror": "auth_config",
    "failedstarttls": "auth_config", "notcompliantrfc": "auth_config",
    "userunknown": "recipient_hard", "hostunknown": "recipient_hard", "hasmoved": "recipient_hard",
    "mailboxfull": "recipient_soft", "suspend": "recipient_soft", "exceedlimit": "recipient_soft",
}


# Which breaker classes may follow from the classifier's kind: the class refines the
# verdict, it never contradicts it (a reply the classifier calls a bad address is never
# counted as a block against the provider, and a block never as a bad address).
KIND_CLASSES = {
    "hard": frozenset({"recipient_hard"}),
    "block": frozenset({"throttle", "connection", "reputation", "block", "auth_config",
                        "content"}),
    "soft": frozenset({"recipient_soft", "transient", "throttle", "connection",
                       "unknown_5xx"}),
}


@dataclass(frozen=True)
class Match:
    klass: str
    rule: Rule | None
    normalised: str


def kind_of(reason: str, code: int) -> str:
    """The classifier's kind for one of its reasons (its ``[kinds]`` table); an address
    reason is hard only in a permanent (5yz) answer, as in the classifier."""
    from deliverability.bounces.rules import ruleset as bounce_rules

    kind = bounce_rules().kinds.get(reason, "")
    if kind == "hard" and code < 500:
        return "soft"  # RFC 5321 4.2.1: a 4yz answer is transient; the address is not judged
    return kind


def classify(provider: str, code: int, text: str, *, reason: str = "", kind: str = "",
             ruleset: Ruleset | None = None) -> Match:
    """The breaker class of an answer, as a refinement of the classifier's verdict.

    ``reason``/``kind`` are the classifier's (``deliverability.classify.classify_answer``
    gives both with the class); when the caller has neither, the classifier is asked, so
    there is one decision per answer. Rules whose class the kind does not allow are
    skipped; without a matching rule the reason's class, else the kind's default."""
    ruleset = ruleset or load()
    normalised = normalise_reply(code, text)
    if 200 <= code < 300:
        return Match("accepted", None, normalised)
    if not reason and not kind:
        from deliverability.classify import classifier_provider, classify_reply

        verdict = classify_reply(code, text, provider=classifier_provider(provider) or None)
        reason, kind = verdict.get("reason", ""), verdict.get("kind", "")
    kind = kind or kind_of(reason, code)
    allowed = KIND_CLASSES.get(kind)
    for rule in ruleset.rules:
        if allowed is not None and rule.klass not in allowed:
            continue
        if rule.matches(provider, code, normalised):
            if rule.klass in ("transient", "unknown_5xx") and reason in REASON_TO_CLASS \
                    and _allowed(REASON_TO_CLASS[reason], allowed):
                return Match(REASON_TO_CLASS[reason], None, normalised)
            return Match(rule.klass, rule, normalised)
    if reason in REASON_TO_CLASS and _allowed(REASON_TO_CLASS[reason], allowed):
        return Match(REASON_TO_CLASS[reason], None, normalised)
    if kind == "hard":
        return Match("recipient_hard", None, normalised)
    if kind == "block":
        return Match("block", None, normalised)
    return Match("transient" if code < 500 else "unknown_5xx", None, normalised)


def _allowed(klass: str, allowed: frozenset[str] | None) -> bool:
    return allowed is None or klass in allowed
