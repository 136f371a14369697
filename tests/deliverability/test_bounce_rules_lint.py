"""Lint of deliverability/rules/bounce_rules.toml (research section 12.5 point 2)."""

import re

import pytest

from deliverability.bounces.rules import RULES_PATH, build, load_data

DATA = load_data()
RULES = DATA["rule"]
REASONS = set(DATA["kinds"])
KINDS = {"hard", "soft", "block", "complaint", "auto_reply", "delivered", "unknown"}
COMMANDS = {"CONN", "HELO", "EHLO", "MAIL", "RCPT", "DATA"}
ALLOWED_KEYS = {"id", "reason", "provider", "status", "code", "command", "patterns", "pattern",
                "context", "weak", "notice", "source", "over_status"}


def _list(value):
    return [value] if isinstance(value, str) else list(value or [])


def _patterns(rule):
    return list(rule.get("patterns") or []) + ([rule["pattern"]] if rule.get("pattern") else [])


def test_version_present():
    assert str(DATA["version"]).strip()


def test_kinds_are_known():
    assert set(DATA["kinds"].values()) <= KINDS
    assert set(DATA["hard_reasons"]) <= {r for r, k in DATA["kinds"].items() if k == "hard"}


def test_whole_file_builds():
    build(DATA)


@pytest.mark.parametrize("rule", RULES, ids=[r["id"] for r in RULES])
def test_rule(rule):
    assert set(rule) <= ALLOWED_KEYS, f"unknown keys {set(rule) - ALLOWED_KEYS}"
    assert rule["reason"] in REASONS, f"reason {rule['reason']!r} is not in [kinds]"
    for prov in _list(rule.get("provider")):
        assert prov in DATA["providers"], f"unknown provider {prov!r}"
    for cmd in _list(rule.get("command")):
        assert cmd in COMMANDS
    assert any(k in rule for k in ("patterns", "pattern", "status", "code", "command", "provider"))
    for key in ("status", "code"):
        if key in rule:
            re.compile(rule[key])
    for p in _patterns(rule):
        re.compile(p)
        assert "\\\\" not in p, f"double escaping in {p!r}"
        # patterns run on lower-cased text without IGNORECASE: upper case could never match
        bare = re.sub(r"\\u[0-9a-fA-F]{4}|\\[A-Za-z]", "", p)
        assert bare == bare.lower(), f"upper case in {p!r}"
        assert not re.compile(p).search(""), f"{p!r} matches the empty string"


def test_every_rule_names_its_source():
    """A rule is written from an RFC, a provider's page or an MTA's format, and says which
    (issue 13: no rule may be a sentence lifted from one sample)."""
    for rule in RULES:
        assert len(str(rule.get("source", "")).strip()) >= 10, rule["id"]


def test_a_rule_without_source_is_refused():
    import copy

    data = copy.deepcopy(DATA)
    del data["rule"][0]["source"]
    with pytest.raises(ValueError, match="no source"):
        build(data)


def test_status_kinds():
    """[status_kinds]: RFC 3463 subjects mapped to kinds the lint knows."""
    for key, kinds in DATA["status_kinds"].items():
        assert re.fullmatch(r"x\.\d{1,3}(?:\.\d{1,3})?", key), key
        assert set(kinds) <= KINDS, key


def test_notice_rules_belong_to_a_provider():
    """Reading the notice before the reply is a provider's habit, never a generic one."""
    for rule in RULES:
        if rule.get("notice"):
            assert rule.get("provider") and _patterns(rule), rule["id"]


def test_ids_unique():
    ids = [r["id"] for r in RULES]
    assert len(ids) == len(set(ids))


def test_no_duplicate_conditions_or_patterns():
    seen = set()
    for r in RULES:
        key = (str(r.get("provider")), r.get("status"), r.get("code"), str(r.get("command")),
               tuple(_patterns(r)))
        assert key not in seen, f"duplicate rule {r['id']}"
        seen.add(key)
        pats = _patterns(r)
        assert len(pats) == len(set(pats)), f"duplicate pattern within {r['id']}"


def test_status_map():
    for code, reason in DATA["status"].items():
        assert re.fullmatch(r"[245x]\.\d{1,3}\.\d{1,3}", code), code
        assert reason in REASONS


def test_providers_have_hints():
    for name, p in DATA["providers"].items():
        assert p.get("hints"), name
        for h in p["hints"]:
            re.compile(h)
            assert "\\\\" not in h


def test_rules_file_is_the_one_loaded():
    assert RULES_PATH.name == "bounce_rules.toml" and RULES_PATH.is_file()


@pytest.mark.parametrize(("pattern", "words"), [
    ("(?:mail ?box|account) (?:is )?full", {"full"}),
    (r"\b[rd]bl\b", {"rbl", "dbl"}),
    ("user (?:is )?unknown", {"unknown"}),
    ("(?:a|b)?c", None),  # nothing is required: no prefilter
])
def test_required_words(pattern, words):
    from deliverability.bounces.rules import required_words
    got = required_words(pattern)
    assert (set(got) if got else None) == words


def test_trigger_words_are_sound():
    """Trigger words are looked up in lower-cased text: they must be lower case and not
    blank, or the rule they admit could never run."""
    from deliverability.bounces.rules import ruleset
    rs = ruleset()
    for rule in rs.rules + rs.weak:
        if rule.triggers is None:
            continue
        for w in rule.triggers:
            assert w == w.lower() and w.strip(), (rule.id, w)


def test_every_vendor_layout_names_its_source_and_has_a_fixture():
    """Each layout parser says which format it is written from, and a hand-written
    fixture citing that format exercises it (deliverability/bounces/layouts)."""
    from pathlib import Path

    from deliverability.bounces import layouts

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
    names = {p.name.split("_", 1)[0] for p in fixtures.glob("*.eml")}
    for layout in layouts.LAYOUTS:
        assert len(layout.SOURCE.strip()) >= 10, layout.NAME
        assert layout.NAME in names, f"no fixture for layout {layout.NAME}"
