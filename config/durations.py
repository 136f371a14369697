"""Durations in words for people: "in 4 h", "12 min ago", "in 1 day 6 h".

One helper for every page that says when something happens (the breaker page,
the campaign report, the dashboard). Precision falls with distance: seconds
under a minute, minutes under an hour, hours and minutes under ten hours, hours
under a day, days (with hours under three days) beyond. Values are rounded to
the shown unit, so 14390 s reads "4 h", not "3 h".
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.utils import timezone

MINUTE, HOUR, DAY = 60, 3600, 86400


def _round(value: float) -> int:
    """Half up (Python's round() would make 150 s "2 min" and 210 s "4 min")."""
    return math.floor(value + 0.5)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def duration_words(seconds: float) -> str:
    """A length of time, unsigned: "45 s", "12 min", "1 h 30 min", "4 h", "2 days"."""
    seconds = abs(float(seconds))
    if _round(seconds) < MINUTE:
        return f"{_round(seconds)} s"
    minutes = _round(seconds / MINUTE)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 10 * 60:
        hours, rest = divmod(minutes, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    hours = _round(seconds / HOUR)
    if hours < 24:
        return f"{hours} h"
    if hours < 3 * 24:
        days, rest = divmod(hours, 24)
        return f"{_plural(days, 'day')} {rest} h" if rest else _plural(days, "day")
    return _plural(_round(seconds / DAY), "day")


def relative_words(when: datetime | float | int | timedelta | None,
                   now: datetime | None = None) -> str:
    """How far ``when`` is from now: "in 4 h", "3 days ago", "now".

    ``when`` is a datetime, a timedelta or a number of seconds from now (positive:
    in the future); None gives ""."""
    if when is None or when == "":
        return ""
    if isinstance(when, datetime):
        now = now or timezone.now()
        seconds = (when - now).total_seconds()
    elif isinstance(when, timedelta):
        seconds = when.total_seconds()
    else:
        seconds = float(when)
    if abs(seconds) < 1:
        return "now"
    words = duration_words(seconds)
    return f"in {words}" if seconds > 0 else f"{words} ago"
