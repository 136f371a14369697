"""Template filters for people-facing pages: ``{% load postwarden %}``.

- ``when|in_words``: "in 4 h", "3 days ago" (config.durations)
- ``seconds|duration``: "4 h" (unsigned)
- ``key|provider_name``: "Microsoft Outlook.com / Hotmail" for ``microsoft_consumer``
"""

from __future__ import annotations

from django import template

from config.durations import duration_words, relative_words

register = template.Library()


@register.filter
def in_words(value) -> str:
    try:
        return relative_words(value)
    except (TypeError, ValueError):
        return ""


@register.filter
def duration(value) -> str:
    try:
        return duration_words(float(value))
    except (TypeError, ValueError):
        return ""


@register.filter
def provider_name(value) -> str:
    from deliverability.providers import provider_name as name

    return name(str(value or ""))


@register.simple_tag(takes_context=True)
def operator_zone(context) -> str:
    """The reader's zone name, for ``{% timezone %}``: ``{% operator_zone as zone %}``."""
    from config.operator_time import operator_zone as zone

    return zone(context.get("request")).key


@register.filter
def seconds_from_now(value) -> str:
    """A number of seconds ahead (the breaker's ``seconds_left``) in words: "in 4 h"."""
    try:
        return relative_words(float(value))
    except (TypeError, ValueError):
        return ""
