"""Who a campaign goes to: lists, exclusions, dates and attribute rules, as one queryset.

The attribute filter is stored in ``Campaign.segment_attributes`` as

    {"match": "all" | "any",
     "rules": [{"attribute": "city", "op": "contains", "value": "berl",
                "case_sensitive": false}, ...]}

Campaigns saved before the builder hold a plain ``{"city": "Berlin"}``: it
reads as ``all`` rules of ``equals``, now case-insensitive for text values
(numbers and true/false still compare exactly, as they did). Attribute names
match whatever case subscribers' stored keys have (``City`` finds ``city``):
imports keep the header as written, editors cannot be expected to know it.

``audience_queryset`` is the one place the filter becomes SQL; the fan-out
(``campaigns.campaign_audience``), the builder's live count and the API use it.
JSON lookups always end in an explicit lookup (``attributes__<key>__iexact``) and
keys never hold ``__``, so a key such as ``contains`` cannot turn into a lookup.
Case folding is the database's: PostgreSQL folds all of Unicode, SQLite only
ASCII (its ``LIKE`` and ``lower``), so ``MÜNCHEN`` = ``münchen`` on PostgreSQL only.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.db import connection
from django.db.models import BooleanField, Case, Q, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Length, StrIndex
from django.db.models.lookups import GreaterThan

from newsletter.exceptions import NewsletterError

OPERATORS = {
    "equals": "equals",
    "not_equals": "does not equal",
    "contains": "contains",
    "is_set": "is set",
    "in": "is one of (comma-separated)",
}
MATCHES = {"all": "all rules (AND)", "any": "any rule (OR)"}
MAX_RULES = 20
MAX_VALUE = 1000
_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")
ATTRIBUTES = "subscriber__attributes"


class AudienceError(NewsletterError, ValueError):
    """The filter is malformed; the message is for the editor."""


@dataclass(frozen=True)
class Rule:
    attribute: str
    op: str = "equals"
    value: str | int | float | bool | list = ""
    case_sensitive: bool = False


@dataclass(frozen=True)
class AudienceFilter:
    match: str = "all"
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def as_json(self) -> dict:
        return {"match": self.match, "rules": [asdict(r) for r in self.rules]}


def _scalar(value) -> bool:
    return isinstance(value, str | int | float | bool)


def audience_filter_parse(raw) -> AudienceFilter:
    """The filter from its stored JSON (either shape); AudienceError if malformed."""
    if raw in (None, "", {}, []):
        return AudienceFilter()
    if not isinstance(raw, dict):
        raise AudienceError('Attribute filters must be an object such as '
                            '{"match": "all", "rules": [...]}.')
    if "rules" not in raw:  # the shape before the builder: {"city": "Berlin"}
        rules = []
        for key, value in raw.items():
            rules.append({"attribute": key, "op": "equals", "value": value})
        raw = {"match": "all", "rules": rules}
    match = raw.get("match", "all")
    if match not in MATCHES:
        raise AudienceError(f"Match {match!r}: choose all or any.")
    items = raw.get("rules")
    if not isinstance(items, list):
        raise AudienceError("The rules must be a list.")
    if len(items) > MAX_RULES:
        raise AudienceError(f"At most {MAX_RULES} attribute rules.")
    rules = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise AudienceError(f"Rule {number} is not an object.")
        key = str(item.get("attribute", "")).strip()
        if not _KEY.fullmatch(key) or "__" in key:
            raise AudienceError(f"Rule {number}: attribute name {key!r}: letters, digits, "
                                "- and _ only (no double underscore).")
        op = item.get("op", "equals")
        if op not in OPERATORS:
            raise AudienceError(f"Rule {number}: unknown operator {op!r} "
                                f"(one of {', '.join(OPERATORS)}).")
        value = item.get("value", "")
        if op == "in":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not value or not all(map(_scalar, value)):
                raise AudienceError(f"Rule {number} ({key} is one of): give one or more "
                                    "values, separated by commas.")
        elif op != "is_set" and not _scalar(value):
            raise AudienceError(f"Rule {number} ({key}): compare with a text, number or "
                                "true/false.")
        if op in ("equals", "not_equals", "contains") and value == "":
            raise AudienceError(f"Rule {number} ({key} {OPERATORS[op]}): give a value "
                                "(or use “is set”).")
        if len(str(value)) > MAX_VALUE:
            raise AudienceError(f"Rule {number} ({key}): the value is too long.")
        rules.append(Rule(key, op, "" if op == "is_set" else value,
                          bool(item.get("case_sensitive", False))))
    return AudienceFilter(match, tuple(rules))


# --------------------------------------------------------------------------- SQL
def _lookup(key: str, name: str, value) -> Q:
    # Always with an explicit final lookup: "attributes__contains__exact" reads "contains"
    # as the key, where "attributes__contains" would be JSON containment.
    return Q(**{f"{ATTRIBUTES}__{key}__{name}": value})


def _equals(key: str, value, case_sensitive: bool) -> Q:
    if isinstance(value, str) and not case_sensitive:
        return _lookup(key, "iexact", value)
    return _lookup(key, "exact", value)  # JSON equality: numbers, booleans, exact text


def _contains(key: str, value, case_sensitive: bool) -> Q:
    if not case_sensitive:
        return _lookup(key, "icontains", str(value))
    # Not LIKE: SQLite's LIKE ignores case whatever one asks. INSTR/STRPOS never do.
    return Q(GreaterThan(StrIndex(KeyTextTransform(key, ATTRIBUTES), Value(str(value))), 0))


def _is_set(key: str) -> Q:
    # Present, not JSON null, not empty text: one positive condition (a negated one would
    # let NULL through on some backends).
    # Django's SQLite text of a JSON null is 'null', hence the explicit JSON-null test.
    return Q(GreaterThan(Length(KeyTextTransform(key, ATTRIBUTES)), 0)) & ~_lookup(
        key, "exact", None)


def _positive(rule: Rule, key: str) -> Q:
    if rule.op in ("equals", "not_equals"):
        return _equals(key, rule.value, rule.case_sensitive)
    if rule.op == "contains":
        return _contains(key, rule.value, rule.case_sensitive)
    if rule.op == "in":
        any_of = Q()
        for item in rule.value:
            any_of |= _equals(key, item, rule.case_sensitive)
        return any_of
    return _is_set(key)


def _definite(condition: Q) -> Q:
    """True or false, never NULL: NOT of a NULL comparison (a missing key, a JSON null)
    would drop the row, where "does not equal" must keep it."""
    return Q(Case(When(condition, then=Value(True)), default=Value(False),
                  output_field=BooleanField()))


def _rule_q(rule: Rule, keys: list[str]) -> Q:
    """The rule over every stored spelling of its attribute name."""
    if rule.op == "not_equals":  # missing or different, under every spelling
        result = Q()
        for key in keys:
            result &= ~_definite(_positive(rule, key))
        return result
    result = Q()
    for key in keys:
        result |= _positive(rule, key)
    return result


def attribute_keys(limit: int = 500) -> list[str]:
    """The attribute names subscribers have (for the builder's suggestions)."""
    if connection.vendor == "postgresql":
        sql = ("SELECT DISTINCT jsonb_object_keys(attributes) AS key "
               "FROM newsletter_subscriber ORDER BY key LIMIT %s")
    else:
        sql = ("SELECT DISTINCT j.key FROM newsletter_subscriber, json_each("
               "newsletter_subscriber.attributes) AS j ORDER BY j.key LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def _spellings(key: str, known: list[str]) -> list[str]:
    same = [k for k in known if k.lower() == key.lower()]
    return sorted(set(same) | {key})


def audience_filter_q(audience_filter: AudienceFilter) -> Q:
    """The filter as a condition on ``Subscription`` rows."""
    if not audience_filter.rules:
        return Q()
    known = attribute_keys(limit=10_000)
    combined = Q()
    for rule in audience_filter.rules:
        q = _rule_q(rule, _spellings(rule.attribute, known))
        combined = (combined & q) if audience_filter.match == "all" else (combined | q)
    return combined


def audience_queryset(*, lists, exclude_lists=(), segment=None,
                      subscribed_after: datetime | None = None,
                      subscribed_before: datetime | None = None) -> QuerySet:
    """Confirmed subscriptions of ``lists`` matching the rest (one row per subscription)."""
    from newsletter.models import Subscription

    audience_filter = segment if isinstance(segment, AudienceFilter) else \
        audience_filter_parse(segment)
    query = Subscription.objects.filter(mailing_list_id__in=list(lists),
                                        status=Subscription.Status.CONFIRMED)
    if audience_filter.rules:
        query = query.filter(audience_filter_q(audience_filter))
    if subscribed_after:
        query = query.filter(created_at__gte=subscribed_after)
    if subscribed_before:
        query = query.filter(created_at__lt=subscribed_before)
    excluded = list(exclude_lists)
    if excluded:
        query = query.exclude(subscriber_id__in=Subscription.objects.filter(
            mailing_list_id__in=excluded, status=Subscription.Status.CONFIRMED,
        ).values("subscriber_id"))
    return query


def audience_count(queryset: QuerySet) -> int:
    """Distinct addresses (a subscriber on two chosen lists gets one mail)."""
    return queryset.values("subscriber_id").distinct().count()
