"""The rule engine: reasons decided from data in ``deliverability/rules/bounce_rules.toml``.

Rules are ordered; the first whose conditions all hold wins. Rules naming a provider
are tried before generic ones, so a provider's own wording beats a generic phrase.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RULES_PATH = Path(__file__).resolve().parent.parent / "rules" / "bounce_rules.toml"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    reason: str
    providers: tuple[str, ...]  # empty: any provider
    status: re.Pattern | None
    code: re.Pattern | None
    commands: frozenset[str]
    pattern: re.Pattern | None
    context: bool  # may also match the wider notice text, not only the diagnostic
    weak: bool  # tried only after the status code had its say
    triggers: frozenset[str] | None  # literal prefixes; the regex runs only if one occurs


class Gate:
    """Which rules' trigger words occur in a text, found in one pass.

    Every trigger is a literal that any match of its rule must contain, so a rule none
    of whose triggers occur cannot match and its regex is skipped. The words are
    compiled into one trie-shaped regex tried at each position (a lookahead, so
    overlapping words are all seen); a word that is a prefix of a longer one found at
    the same position is added afterwards.
    """

    __slots__ = ("prefixes", "rx")

    def __init__(self, words) -> None:
        words = sorted(set(words))
        self.rx = re.compile("(?=(" + _trie_regex(words) + "))") if words else None
        self.prefixes = {w: tuple(v for v in words if v != w and w.startswith(v))
                         for w in words}

    def present(self, text: str) -> frozenset[str]:
        if self.rx is None:
            return frozenset()
        found = set(self.rx.findall(text))
        if not found:
            return frozenset()
        for w in list(found):
            found.update(self.prefixes.get(w, ()))
        return frozenset(found)


def _trie_regex(words: list[str]) -> str:
    trie: dict = {}
    for w in words:
        node = trie
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        end = "" in node
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if end:  # a word ends here: the rest is optional, greedy (longest word first)
            return "(?:" + body + ")?" if len(branches) == 1 else body + "?"
        return body

    return emit(trie)


@dataclass(frozen=True, slots=True)
class RuleSet:
    version: str
    kinds: dict[str, str]
    hard_reasons: frozenset[str]
    rules: tuple[Rule, ...]
    weak: tuple[Rule, ...]
    status_map: dict[str, str]
    providers: tuple[tuple[str, re.Pattern, tuple[str, ...]], ...]
    gate: Gate
    provider_gate: re.Pattern | None

    def provider_of(self, *hints: str) -> str:
        """First provider whose hint pattern matches any of the hints (MTA names,
        diagnostic text, domains), or ""."""
        blob = " ".join(h for h in hints if h).lower()
        if not blob or (self.provider_gate is not None and not self.provider_gate.search(blob)):
            return ""
        for name, rx, triggers in self.providers:  # file order decides between several
            if any(t in blob for t in triggers) and rx.search(blob):
                return name
        return ""

    def match(self, diagnostic: str, status: str, code: str, command: str, provider: str,
              context: bool = False, weak: bool = False, found: frozenset[str] | None = None
              ) -> Rule | None:
        """First rule whose conditions hold. ``found`` is ``self.present(text)`` when the
        caller already has it (the same text is often tried against both rule groups)."""
        text = diagnostic.lower()
        if found is None:
            found = self.gate.present(text)
        for rule in self.weak if weak else self.rules:
            if rule.providers and provider not in rule.providers:
                continue
            if context and not (rule.context and rule.pattern):
                continue
            if rule.status is not None and not rule.status.search(status):
                continue
            if rule.code is not None and not rule.code.search(code):
                continue
            if rule.commands and command not in rule.commands:
                continue
            if rule.pattern is not None:
                if rule.triggers is not None and found.isdisjoint(rule.triggers):
                    continue
                if not rule.pattern.search(text):
                    continue
            return rule
        return None

    def status_reason(self, status: str) -> str:
        """Reason implied by an enhanced status code alone (RFC 3463 subjects)."""
        if not status:
            return ""
        return self.status_map.get(status) or self.status_map.get(
            "x." + status.split(".", 1)[-1]) or ""


def _compile(value: str | None, where: str, flags: int = 0) -> re.Pattern | None:
    """Patterns are written in lower case and run on lower-cased text: no IGNORECASE,
    which is several times slower on long alternations."""
    if value is None or value == "":
        return None
    try:
        return re.compile(value, flags)
    except re.error as e:  # surfaced by the lint test; keep the message useful
        raise ValueError(f"{where}: bad pattern {value!r}: {e}") from e


_META = set(".^$*+?{}[]|()")
_QUANT = set("?*{")


def literal_prefix(pattern: str) -> str:
    """The literal text every match of ``pattern`` starts with ("" if none is certain)."""
    out: list[str] = []
    i = 0
    if pattern.startswith("\\b"):
        i = 2
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt == "u" and len(pattern) >= i + 6:
                ch, step = chr(int(pattern[i + 2 : i + 6], 16)), 6
            elif nxt and not nxt.isalnum():
                ch, step = nxt, 2
            else:
                break
        elif c in _META:
            break
        else:
            ch, step = c, 1
        if pattern[i + step : i + step + 1] in _QUANT:
            break  # this char is optional or repeated
        out.append(ch)
        i += step
    return "".join(out)


def _triggers(patterns: list[str] | None) -> tuple[str, ...] | None:
    """Prefilter words for a rule: only when every alternative has a literal start."""
    if not patterns:
        return None
    words: list[str] = []
    for p in patterns:
        alts = _leading_group(p)
        if alts is None:
            if _top_level_alternation(p):
                return None
            alts = [p]
        for a in alts:
            w = literal_prefix(a)
            if len(w) < 3:
                return None
            words.append(w)
    return tuple(dict.fromkeys(words))


def _split_top(text: str) -> list[str] | None:
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _top_level_alternation(p: str) -> bool:
    return len(_split_top(p) or []) > 1


def _leading_group(p: str) -> list[str] | None:
    """``(?:a|b)rest`` -> ["a", "b"] (each alternative's start), when the group is not optional."""
    if not p.startswith("(?:"):
        return None
    depth, i = 0, 0
    while i < len(p):
        c = p[i]
        if c == "\\":
            i += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                break
        i += 1
    if depth != 0 or p[i + 1 : i + 2] in _QUANT or _top_level_alternation(p):
        return None
    return _split_top(p[3:i])


def _frozen(words: tuple[str, ...] | None) -> frozenset[str] | None:
    return None if words is None else frozenset(words)


def _as_tuple(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def build(data: dict) -> RuleSet:
    kinds = dict(data["kinds"])
    rules = []
    for n, r in enumerate(data.get("rule", [])):
        where = f"rule {r.get('id', n)}"
        pats = r.get("patterns")
        pattern = r.get("pattern")
        if pats:
            pattern = "|".join(f"(?:{p})" for p in pats)
        rules.append(Rule(
            id=r["id"], reason=r["reason"], providers=_as_tuple(r.get("provider")),
            status=_compile(r.get("status"), where, re.I), code=_compile(r.get("code"), where),
            commands=frozenset(_as_tuple(r.get("command"))),
            pattern=_compile(pattern, where), context=bool(r.get("context", True)),
            weak=bool(r.get("weak", False)), triggers=_frozen(_triggers(pats))))
    # provider rules first, file order kept within each group
    rules.sort(key=lambda r: 0 if r.providers else 1)
    strong = tuple(r for r in rules if not r.weak)
    weak = tuple(r for r in rules if r.weak)
    providers = tuple((name, _compile("|".join(f"(?:{h})" for h in p["hints"]), name),
                       _triggers(p["hints"]) or ("",))
                      for name, p in data.get("providers", {}).items())
    words = [t for r in rules if r.triggers for t in r.triggers]
    hints = [t for _, _, ts in providers for t in ts]
    provider_gate = None if "" in hints or not hints else re.compile(
        "|".join(re.escape(h) for h in sorted(set(hints), key=len, reverse=True)))
    return RuleSet(version=str(data["version"]), kinds=kinds,
                   hard_reasons=frozenset(data.get("hard_reasons", [])),
                   rules=strong, weak=weak, status_map=dict(data.get("status", {})),
                   providers=providers, gate=Gate(words), provider_gate=provider_gate)


def load_data(path: Path = RULES_PATH) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


@lru_cache(maxsize=4)
def ruleset(path: Path = RULES_PATH) -> RuleSet:
    return build(load_data(path))
