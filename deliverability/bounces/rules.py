"""The rule engine: reasons decided from data in ``deliverability/rules/bounce_rules.toml``.

Rules are ordered; the first whose conditions all hold wins. Rules naming a provider
are tried before generic ones, so a provider's own wording beats a generic phrase.
"""

from __future__ import annotations

import re
import re._constants as sre_c
import re._parser as sre_parse
import tomllib
from dataclasses import dataclass, field
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
    notice: bool  # the provider states its reason in the notice: read before the reply
    over_status: bool  # a fact about the sender: holds under any status ([status_kinds])
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
    # per group (False: strong, True: weak): indices of rules tried whatever the text,
    # and trigger word -> indices of the rules it admits
    untriggered: dict[bool, tuple[int, ...]] = field(default_factory=dict)
    triggered: dict[bool, dict[str, tuple[int, ...]]] = field(default_factory=dict)
    always: dict[tuple, tuple[int, ...]] = field(default_factory=dict)  # cache
    notice_rules: dict[str, tuple[Rule, ...]] = field(default_factory=dict)  # by provider
    # RFC 3463 subject -> kinds a generic text rule may give under it ([status_kinds])
    status_kinds: dict[str, frozenset[str]] = field(default_factory=dict)

    @property
    def provider_names(self) -> frozenset[str]:
        return frozenset(name for name, _, _ in self.providers)

    def match_notice(self, text: str, provider: str) -> Rule | None:
        """A provider's own statement in the notice (``notice = true`` rules), which
        outranks the reply it quotes. ``text`` is lower-cased."""
        for rule in self.notice_rules.get(provider, ()):
            if rule.pattern is not None and rule.pattern.search(text):
                return rule
        return None

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
              context: bool = False, weak: bool = False, found: frozenset[str] | None = None,
              lowered: str | None = None, kinds: frozenset[str] | None = None) -> Rule | None:
        """First rule whose conditions hold. ``found`` is ``self.gate.present(lowered)``
        when the caller already has it (the same text is often tried against both rule
        groups), ``lowered`` the lower-cased diagnostic.

        Only candidates are tried: rules without a trigger word, and the rules whose
        trigger words occur in the text (in file order, so the first match still wins)."""
        text = diagnostic.lower() if lowered is None else lowered
        if found is None:
            found = self.gate.present(text)
        group = self.weak if weak else self.rules
        key = (weak, provider, context)
        always = self.always.get(key)
        if always is None:
            always = self.always[key] = tuple(
                i for i in self.untriggered[weak]
                if not (group[i].providers and provider not in group[i].providers)
                and not (context and not (group[i].context and group[i].pattern)))
        by_word = self.triggered[weak]
        hit = [i for w in found for i in by_word.get(w, ())]
        order = sorted(set(hit).union(always)) if hit else always
        for i in order:
            rule = group[i]
            if rule.providers and provider not in rule.providers:
                continue
            if kinds is not None and not rule.providers and rule.status is None \
                    and not rule.over_status and self.kinds.get(rule.reason) not in kinds:
                continue  # the status's subject says otherwise; only a provider's text may
            if context and not (rule.context and rule.pattern):
                continue
            if rule.status is not None and not rule.status.search(status):
                continue
            if rule.code is not None and not rule.code.search(code):
                continue
            if rule.commands and command not in rule.commands:
                continue
            if rule.pattern is not None and not rule.pattern.search(text):
                continue
            return rule
        return None

    def kinds_for_status(self, status: str) -> frozenset[str] | None:
        """The kinds that the enhanced status's class and subject leave to a generic
        text rule (None: any). ``5.1.1`` -> ``x.1.1`` -> ``x.1``."""
        if not status or not self.status_kinds:
            return None
        _, _, rest = status.partition(".")
        sub = rest.partition(".")[0]
        return (self.status_kinds.get(status) or self.status_kinds.get("x." + rest)
                or self.status_kinds.get("x." + sub))

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


MIN_TRIGGER = 3  # shorter words occur everywhere and filter nothing
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT,
            getattr(sre_c, "POSSESSIVE_REPEAT", sre_c.MAX_REPEAT))


def required_words(pattern: str) -> frozenset[str] | None:
    """Literal words of which every match of ``pattern`` contains at least one, or None.

    Read from the parsed pattern: in a sequence, the best of its literal runs and of its
    mandatory groups; in an alternation, the union of what each branch requires (None
    if any branch requires nothing). Optional parts, classes and lookarounds require
    nothing. ``"(?:mail ?box|account) (?:is )?full"`` -> {"full"}."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error:
        return None
    return _required(tree)


def _class_chars(av) -> list[str] | None:
    """The characters of a small positive class (``[rd]``, ``[1-4]``), else None."""
    chars: list[str] = []
    for op, v in av:
        if op is sre_c.LITERAL:
            chars.append(chr(v))
        elif op is sre_c.RANGE and v[1] - v[0] < 10:
            chars.extend(chr(c) for c in range(v[0], v[1] + 1))
        else:
            return None
    return chars if len(chars) <= 10 else None


def _required(items) -> frozenset[str] | None:
    cands: list[frozenset[str]] = []
    run: list[str] = [""]  # the literal text read so far, spelled every possible way

    def flush() -> None:
        if _weight(run[0]) >= MIN_TRIGGER:
            cands.append(frozenset(run))
        run[:] = [""]

    for op, av in items:
        if op is sre_c.LITERAL:
            run[:] = [w + chr(av) for w in run]
            continue
        if op is sre_c.IN:
            chars = _class_chars(av)
            if chars and len(run) * len(chars) <= 16:
                run[:] = [w + c for w in run for c in chars]
                continue
        flush()
        req = None
        if op is sre_c.SUBPATTERN:
            req = _required(av[-1])
        elif op is sre_c.BRANCH:
            branches = [_required(b) for b in av[1]]
            if all(branches):
                req = frozenset().union(*branches)
        elif op in _REPEATS and av[0] >= 1:
            req = _required(av[2])
        if req:
            cands.append(req)
    flush()
    if not cands:
        return None
    # the most selective: longest shortest word, then fewest words; on a tie the later
    # one (the end of a phrase, "mailbox is full", is more telling than its start)
    best = max(range(len(cands)), key=lambda i: (min(_weight(w) for w in cands[i]),
                                                 -len(cands[i]), i))
    return cands[best]


def _weight(word: str) -> int:
    """How telling a word is: its characters other than spaces (" - " tells little)."""
    return len(word) - word.count(" ")


def _triggers(patterns: list[str] | None) -> tuple[str, ...] | None:
    """Prefilter words for a rule (any match of any pattern contains one of them)."""
    if not patterns:
        return None
    words: set[str] = set()
    for p in patterns:
        req = required_words(p)
        if not req:
            return None
        words |= req
    return tuple(sorted(words))


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
        if not str(r.get("source", "")).strip():
            # a rule says what it is written from (RFC, provider page, MTA format)
            raise ValueError(f"{where}: no source")
        pats = r.get("patterns")
        pattern = r.get("pattern")
        if pats:
            pattern = "|".join(f"(?:{p})" for p in pats)
        rules.append(Rule(
            id=r["id"], reason=r["reason"], providers=_as_tuple(r.get("provider")),
            status=_compile(r.get("status"), where, re.I), code=_compile(r.get("code"), where),
            commands=frozenset(_as_tuple(r.get("command"))),
            pattern=_compile(pattern, where), context=bool(r.get("context", True)),
            weak=bool(r.get("weak", False)), notice=bool(r.get("notice", False)),
            over_status=bool(r.get("over_status", False)),
            triggers=_frozen(_triggers(pats))))
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
    untriggered: dict[bool, tuple[int, ...]] = {}
    triggered: dict[bool, dict[str, tuple[int, ...]]] = {}
    for is_weak, group in ((False, strong), (True, weak)):
        untriggered[is_weak] = tuple(i for i, r in enumerate(group)
                                     if r.pattern is None or r.triggers is None)
        by_word: dict[str, list[int]] = {}
        for i, r in enumerate(group):
            if r.pattern is not None and r.triggers is not None:
                for w in r.triggers:
                    by_word.setdefault(w, []).append(i)
        triggered[is_weak] = {w: tuple(v) for w, v in by_word.items()}
    return RuleSet(version=str(data["version"]), kinds=kinds,
                   hard_reasons=frozenset(data.get("hard_reasons", [])),
                   rules=strong, weak=weak, status_map=dict(data.get("status", {})),
                   providers=providers, gate=Gate(words), provider_gate=provider_gate,
                   untriggered=untriggered, triggered=triggered,
                   notice_rules=_notice_rules(rules),
                   status_kinds={k: frozenset(v) for k, v in data.get("status_kinds", {}).items()})


def _notice_rules(rules: list[Rule]) -> dict[str, tuple[Rule, ...]]:
    out: dict[str, list[Rule]] = {}
    for rule in rules:
        if rule.notice:
            for provider in rule.providers:
                out.setdefault(provider, []).append(rule)
    return {k: tuple(v) for k, v in out.items()}


def load_data(path: Path = RULES_PATH) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


@lru_cache(maxsize=4)
def ruleset(path: Path = RULES_PATH) -> RuleSet:
    return build(load_data(path))
