"""Operators teach the breaker a new reply, or change a shipped rule, in the admin."""

import pytest
from django.urls import reverse

from deliverability.breaker import rules
from deliverability.breaker.engine import Breaker
from deliverability.models import BreakerRuleOverride

NEW_REPLY = "550 5.7.1 [XY42] Your server is not welcome here today"


@pytest.fixture(autouse=True)
def fresh_rules():
    rules.reload()
    yield
    rules.reload()


@pytest.mark.django_db
def test_an_added_rule_is_tried_first_and_a_replaced_rule_wins():
    before = rules.classify("anything.example", 550, NEW_REPLY)
    assert before.rule is None or before.rule.id != "ops.xy42"
    BreakerRuleOverride.objects.create(rule_id="ops.xy42", pattern=r"\[XY\d+\]", klass="block",
                                       trigger_count=1, trigger_window="1m")
    BreakerRuleOverride.objects.create(rule_id="swisscom.block", providers="swisscom",
                                       pattern="not allowed to send us mail", klass="reputation")
    rules.reload()
    match = rules.classify("anything.example", 550, NEW_REPLY)
    assert (match.klass, match.rule.id) == ("block", "ops.xy42")
    swisscom = rules.classify("swisscom", 554, "5.7.1 You are not allowed to send us mail")
    assert (swisscom.klass, swisscom.rule.id) == ("reputation", "swisscom.block")


@pytest.mark.django_db
def test_a_long_lived_breaker_sees_the_override(redis_client):
    breaker = Breaker(redis=redis_client, time_scale=1.0)  # like the gate's, per process
    assert breaker.record(provider="x.example", pool="bulk", code=550, text=NEW_REPLY) is None
    BreakerRuleOverride.objects.create(rule_id="ops.xy42", pattern=r"\[XY\d+\]", klass="block",
                                       trigger_count=1, trigger_window="1m")
    rules.reload()
    assert breaker.record(provider="x.example", pool="bulk", code=550, text=NEW_REPLY) == "paused"


@pytest.mark.django_db
def test_the_admin_form_refuses_broken_rules(admin_client):
    url = reverse("admin:deliverability_breakerruleoverride_add")
    response = admin_client.post(url, {"rule_id": "bad", "pattern": "([unclosed",
                                       "klass": "block", "providers": "nosuchprovider",
                                       "ladder": "4 hours", "enabled": "on"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "not a valid regular expression" in page and "unknown provider" in page
    assert "bad duration" in page
    assert not BreakerRuleOverride.objects.exists()
    response = admin_client.post(url, {"rule_id": "good", "pattern": r"\[XY\d+\]",
                                       "klass": "block", "providers": "google",
                                       "ladder": "1h,manual", "enabled": "on"})
    assert response.status_code == 302
    assert rules.classify("google", 550, NEW_REPLY).rule.id == "good"
