"""The time zones an editor schedules in: the IANA names ``zoneinfo`` knows, with labels.

source: the IANA time zone database as Python's ``zoneinfo`` ships or finds it
(``zoneinfo.available_timezones``); a name is valid exactly when ``ZoneInfo`` loads it.
"""

from __future__ import annotations

import difflib
import zoneinfo
from datetime import UTC, datetime
from functools import lru_cache

MAX_NAME = 64  # Campaign.schedule_timezone


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    # "localtime" and "Factory" are not places an editor lives in.
    return tuple(sorted(z for z in zoneinfo.available_timezones()
                        if z not in ("localtime", "Factory")))


@lru_cache(maxsize=1)
def _by_lower() -> dict[str, str]:
    return {name.lower(): name for name in timezone_names()}


def timezone_label(name: str, now: datetime | None = None) -> str:
    """``Europe/Berlin — UTC+01:00, 14:05 now``; ``America/New_York (New York) — ...``
    (the place in words too, so typing "new york" finds it)."""
    local = (now or datetime.now(UTC)).astimezone(zoneinfo.ZoneInfo(name))
    offset = local.strftime("%z")
    place = name.rpartition("/")[2]
    words = f" ({place.replace('_', ' ')})" if "_" in place else ""
    return f"{name}{words} — UTC{offset[:3]}:{offset[3:]}, {local:%H:%M} now"


def timezone_choices(now: datetime | None = None) -> tuple[tuple[str, str], ...]:
    """(name, label) for every zone, the labels at one instant (made once a minute:
    ~600 labels take ~25 ms, each page of the minute shows the same)."""
    return _choices_at((now or datetime.now(UTC)).replace(second=0, microsecond=0))


@lru_cache(maxsize=2)
def _choices_at(minute: datetime) -> tuple[tuple[str, str], ...]:
    return tuple((name, timezone_label(name, minute)) for name in timezone_names())


class UnknownTimezone(ValueError):
    """Not a zone name; the message names the closest ones."""


def timezone_resolve(value: str) -> str:
    """The zone's canonical name (case and spaces forgiven), or UnknownTimezone."""
    typed = (value or "").strip()
    # A label picked whole ("Europe/Berlin — UTC+01:00, ...") stands for its name.
    name = typed.split(" — ", 1)[0].strip().replace(" ", "_")
    found = _by_lower().get(name.lower()) if len(name) <= MAX_NAME else None
    if found:
        return found
    close = difflib.get_close_matches(name.lower(), _by_lower(), n=3, cutoff=0.6)
    hint = (" Did you mean " + " or ".join(_by_lower()[c] for c in close) + "?") if close \
        else " Choose one from the list, e.g. Europe/Berlin or America/New_York."
    shown = typed if len(typed) <= MAX_NAME else typed[:MAX_NAME] + "…"
    raise UnknownTimezone(f"Unknown time zone {shown!r}.{hint}")
