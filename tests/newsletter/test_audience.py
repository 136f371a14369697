"""The audience filter: operators, their case rules, all/any, old exact-match JSON, key
spellings, hostile keys. Run on SQLite and on PostgreSQL (DATABASE_URL): JSON lookups differ."""

from __future__ import annotations

import pytest

from newsletter.audience import (
    AudienceError,
    attribute_keys,
    audience_count,
    audience_filter_parse,
    audience_queryset,
)
from newsletter.models import MailingList, Subscriber, Subscription

pytestmark = pytest.mark.django_db

PEOPLE = {
    "ann@example.org": {"city": "Berlin", "plan": "Pro", "age": 41, "vip": True},
    "bea@example.org": {"City": "BERLIN-Mitte", "plan": "free"},
    "cem@example.org": {"city": "Hamburg", "plan": ""},
    "dan@example.org": {"city": "berlin"},
    "eve@example.org": {},
    "fay@example.org": {"city": None, "contains": "x", "a__b": "y"},
}


@pytest.fixture
def people(db):
    mailing_list = MailingList.objects.create(name="News", slug="news")
    for email, attributes in PEOPLE.items():
        subscriber = Subscriber.objects.create(email=email, attributes=attributes)
        Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                    status="confirmed")
    return mailing_list


def who(people, segment) -> set[str]:
    query = audience_queryset(lists=[people.id], segment=segment)
    return {s.subscriber.email.partition("@")[0] for s in query.select_related("subscriber")}


def rule(attribute, op, value="", case_sensitive=False, match="all"):
    return {"match": match, "rules": [{"attribute": attribute, "op": op, "value": value,
                                        "case_sensitive": case_sensitive}]}


def test_old_exact_match_json_still_works_and_now_ignores_case(people):
    assert who(people, {"City": "berlin"}) == {"ann", "dan"}
    assert who(people, {"city": "Berlin"}) == {"ann", "dan"}
    assert who(people, {"age": 41}) == {"ann"}
    assert who(people, {"vip": True}) == {"ann"}
    assert who(people, {"city": "Berlin", "plan": "pro"}) == {"ann"}
    assert who(people, {}) == set(p.partition("@")[0] for p in PEOPLE)


@pytest.mark.parametrize(("segment", "expected"), [
    (rule("city", "equals", "BERLIN"), {"ann", "dan"}),
    (rule("city", "equals", "Berlin", case_sensitive=True), {"ann"}),
    (rule("city", "contains", "berl"), {"ann", "bea", "dan"}),
    (rule("city", "contains", "Berl", case_sensitive=True), {"ann"}),
    (rule("city", "contains", "BERL", case_sensitive=True), {"bea"}),
    (rule("city", "not_equals", "berlin"), {"bea", "cem", "eve", "fay"}),
    (rule("city", "not_equals", "Berlin", case_sensitive=True), {"bea", "cem", "dan", "eve",
                                                                  "fay"}),
    (rule("city", "is_set"), {"ann", "bea", "cem", "dan"}),
    (rule("plan", "is_set"), {"ann", "bea"}),
    (rule("plan", "in", "pro, FREE"), {"ann", "bea"}),
    (rule("plan", "in", ["Pro", "FREE"], case_sensitive=True), {"ann"}),
    (rule("age", "equals", "41"), {"ann"}),
    (rule("contains", "equals", "x"), {"fay"}),
    (rule("a__b", "is_set"), None),
])
def test_each_operator_and_its_case_rule(people, segment, expected):
    if expected is None:
        with pytest.raises(AudienceError, match="double underscore"):
            who(people, segment)
        return
    assert who(people, segment) == expected


def test_all_and_any_join_the_rules(people):
    rules = [{"attribute": "city", "op": "contains", "value": "berlin"},
             {"attribute": "plan", "op": "is_set"}]
    assert who(people, {"match": "all", "rules": rules}) == {"ann", "bea"}
    assert who(people, {"match": "any", "rules": rules}) == {"ann", "bea", "dan"}


def test_a_value_with_like_wildcards_is_literal(people):
    assert who(people, rule("city", "contains", "%")) == set()
    assert who(people, rule("city", "contains", "_")) == set()


@pytest.mark.parametrize(("raw", "message"), [
    ([1, 2], "must be an object"),
    ({"match": "some", "rules": []}, "choose all or any"),
    ({"rules": [{"attribute": "ci ty", "op": "equals", "value": "x"}]}, "letters, digits"),
    ({"rules": [{"attribute": "city", "op": "like", "value": "x"}]}, "unknown operator"),
    ({"rules": [{"attribute": "city", "op": "equals", "value": ""}]}, "give a value"),
    ({"rules": [{"attribute": "city", "op": "in", "value": " , "}]}, "one or more values"),
    ({"city": {"nested": 1}}, "compare with a text"),
    ({"rules": [{"attribute": "c", "op": "is_set"}] * 21}, "At most 20"),
])
def test_malformed_filters_are_refused_with_a_reason(raw, message):
    with pytest.raises(AudienceError, match=message):
        audience_filter_parse(raw)


def test_known_attribute_keys_come_from_stored_subscribers(people):
    assert set(attribute_keys()) == {"city", "City", "plan", "age", "vip", "contains", "a__b"}


def test_count_is_distinct_addresses(people):
    other = MailingList.objects.create(name="Other", slug="other")
    Subscription.objects.create(subscriber=Subscriber.objects.get(email="ann@example.org"),
                                mailing_list=other, status="confirmed")
    query = audience_queryset(lists=[people.id, other.id], segment=rule("city", "equals",
                                                                       "berlin"))
    assert query.count() == 3 and audience_count(query) == 2
