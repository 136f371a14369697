"""Lint of the catch-all failure rate and the manual tags of rules.toml."""

import tomllib

from deliverability.breaker.failure_rate import rule_from
from deliverability.breaker.rules import CLASSES, RULES_PATH, duration


def raw():
    with open(RULES_PATH, "rb") as handle:
        return tomllib.load(handle)


def test_the_failure_rate_is_sourced_and_counts_no_recipient_class():
    data = raw()
    rule = rule_from(data)
    assert rule is not None and "research" in rule.source
    assert 0 < rule.max_failure_ratio < 1 and rule.min_attempts >= 20
    assert rule.window == duration(data["failure_rate"]["window"])
    assert rule.count_classes <= set(CLASSES)
    assert not rule.count_classes & {"recipient_hard", "recipient_soft"}
    assert all(step == "manual" or duration(step) > 0 for step in rule.klass.ladder)


def test_every_manual_tag_says_what_to_do_and_where():
    data = raw()
    tags = data["manual_tags"]
    assert {"needs_delisting_form", "needs_postmaster_contact"} <= set(tags)
    for name, spec in tags.items():
        assert spec["action"] and spec["url_from"] in ("delisting_url", "postmaster_url"), name
    tagged = [r for r in data["rules"] if r.get("tag") in tags]
    assert {r["id"] for r in tagged} >= {"swisscom.block", "tonline.block"}
    for rule in tagged:  # each has a provider whose page the operator is sent to
        for provider in rule["providers"]:
            spec = data["providers"][provider]
            assert spec[tags[rule["tag"]]["url_from"]].startswith("https://"), rule["id"]
