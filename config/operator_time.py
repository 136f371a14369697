"""The time zone a person reads admin pages in: their ``pw_tz`` cookie (set when
they schedule a campaign in their zone), else the service's ``TIME_ZONE``.

The cookie comes from the browser: only a name the IANA database knows is used.
"""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime

from django.conf import settings

COOKIE = "pw_tz"


def zone_named(name: str | None) -> zoneinfo.ZoneInfo | None:
    name = (name or "").strip()
    if not name or len(name) > 64:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):  # unknown, or a path-like name
        return None


def operator_zone(request=None) -> zoneinfo.ZoneInfo:
    cookies = getattr(request, "COOKIES", None) or {}
    return (zone_named(cookies.get(COOKIE)) or zone_named(settings.TIME_ZONE)
            or zoneinfo.ZoneInfo("UTC"))


def operator_today(request=None, now: datetime | None = None) -> date:
    from django.utils import timezone

    return (now or timezone.now()).astimezone(operator_zone(request)).date()
