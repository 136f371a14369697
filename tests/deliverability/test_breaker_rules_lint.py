"""Lint of the breaker rules (rules.toml): the defects that kill rules silently."""

import re
import tomllib

import pytest

from deliverability.breaker.rules import CLASSES, REACTIONS, RULES_PATH, duration, load


@pytest.fixture(scope="module")
def raw():
    with open(RULES_PATH, "rb") as handle:
        return tomllib.load(handle)


def test_the_ruleset_loads_and_is_versioned(raw):
    ruleset = load()
    assert ruleset.version == raw["version"] >= 1
    assert len(ruleset.rules) == len(raw["rules"]) > 40


def test_every_pattern_compiles_without_double_escaping(raw):
    for rule in raw["rules"]:
        re.compile(rule["pattern"])
        if "code" in rule:
            re.compile(rule["code"])
        # A literal backslash-backslash means the rule was escaped twice and matches nothing.
        assert "\\\\" not in rule["pattern"], rule["id"]


def test_every_class_reaction_and_duration_exists(raw):
    assert set(raw["classes"]) == set(CLASSES)
    for name, spec in raw["classes"].items():
        assert spec["reaction"] in REACTIONS, name
        for step in spec.get("ladder", []):
            assert step == "manual" or duration(step) > 0
    for rule in raw["rules"]:
        assert rule["class"] in CLASSES, rule["id"]
        for step in rule.get("ladder", []):
            assert step == "manual" or duration(step) > 0


def test_every_provider_named_exists_and_can_be_matched(raw):
    providers = raw["providers"]
    for rule in raw["rules"]:
        for provider in rule["providers"]:
            assert provider in providers, rule["id"]
    for key, spec in providers.items():
        assert spec.get("mx_suffixes") or spec.get("domains"), key
        for suffix in spec.get("mx_suffixes", []):
            assert suffix == suffix.lower() and suffix.startswith(".") and not suffix.endswith(".")
        assert spec["postmaster_url"].startswith("https://"), key


def test_no_duplicate_ids_or_rules(raw):
    ids = [rule["id"] for rule in raw["rules"]]
    assert len(ids) == len(set(ids))
    shapes = [(tuple(r["providers"]), r.get("code"), r["pattern"].lower()) for r in raw["rules"]]
    assert len(shapes) == len(set(shapes))


def test_generic_rules_come_after_provider_rules(raw):
    seen_generic = False
    for rule in raw["rules"]:
        if not rule["providers"]:
            seen_generic = True
        else:
            assert not seen_generic, f"{rule['id']} is shadowed by a generic rule before it"


def test_the_issue_providers_are_shipped(raw):
    assert {"google", "yahoo", "microsoft_consumer", "microsoft_365", "apple", "united_internet",
            "t_online", "orange", "comcast", "swisscom"} <= set(raw["providers"])
