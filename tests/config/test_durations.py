"""Durations in words (config.durations and its template filters), at every boundary."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template

from config.durations import duration_words, relative_words


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "0 s"), (1, "1 s"), (59, "59 s"), (59.4, "59 s"),
    (59.5, "1 min"), (60, "1 min"), (89, "1 min"), (90, "2 min"), (150, "3 min"),
    (3569, "59 min"), (3570, "1 h"), (3600, "1 h"), (5400, "1 h 30 min"),
    (14390, "4 h"),  # the breaker's "in 14390 s" of issue 21
    (9 * 3600 + 59 * 60, "9 h 59 min"), (9 * 3600 + 59 * 60 + 30, "10 h"), (36000, "10 h"),
    (23 * 3600 + 29 * 60, "23 h"), (23 * 3600 + 30 * 60, "1 day"), (86400, "1 day"),
    (86400 + 3600, "1 day 1 h"), (36 * 3600, "1 day 12 h"), (2 * 86400, "2 days"),
    (71 * 3600 + 29 * 60, "2 days 23 h"), (71 * 3600 + 30 * 60, "3 days"),
    (10 * 86400, "10 days"), (-5400, "1 h 30 min"),
])
def test_duration_words(seconds, words):
    assert duration_words(seconds) == words


NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)


@pytest.mark.parametrize(("when", "words"), [
    (NOW + timedelta(seconds=14390), "in 4 h"),
    (NOW + timedelta(minutes=12), "in 12 min"),
    (NOW - timedelta(days=3), "3 days ago"),
    (NOW - timedelta(seconds=30), "30 s ago"),
    (NOW + timedelta(seconds=0.5), "now"), (NOW - timedelta(seconds=0.99), "now"),
    (NOW + timedelta(seconds=1), "in 1 s"),
    (timedelta(hours=-2), "2 h ago"), (600, "in 10 min"), (-1, "1 s ago"),
    (None, ""),
])
def test_relative_words(when, words):
    assert relative_words(when, now=NOW) == words


def test_template_filters():
    soon = datetime.now(UTC) + timedelta(hours=4, seconds=5)
    html = Template("{% load postwarden %}{{ when|in_words }}|{{ left|seconds_from_now }}|"
                    "{{ left|duration }}|{{ bad|in_words }}{{ bad|duration }}|"
                    "{{ key|provider_name }}").render(
        Context({"when": soon, "left": 14390, "bad": "x", "key": "microsoft_consumer"}))
    assert html == "in 4 h|in 4 h|4 h||Microsoft Outlook.com / Hotmail"
