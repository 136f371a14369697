"""The audience builder in the campaign form: rows of attribute · operator · value, a live count.

The widget renders the filter as rows (``newsletter/audience.js``) and keeps the
JSON in a hidden textarea, so the stored value and its validation stay the
model field's. The count endpoint answers what the form holds right now,
through ``newsletter.audience.audience_queryset``, the query the fan-out uses.
"""

from __future__ import annotations

import json
from datetime import datetime

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.utils.dateparse import parse_datetime
from django.utils.timezone import get_current_timezone, is_naive, make_aware

from newsletter.audience import (
    MATCHES,
    OPERATORS,
    AudienceError,
    attribute_keys,
    audience_count,
    audience_filter_parse,
    audience_queryset,
)

COUNT_PERMISSION = "newsletter.change_campaign"


class AudienceWidget(forms.Textarea):
    template_name = "newsletter/admin/widgets/audience.html"

    def __init__(self, count_url: str = "", attrs=None):
        super().__init__(attrs)
        self.count_url = count_url

    class Media:
        js = ("newsletter/audience.js",)
        css = {"all": ("newsletter/audience.css",)}

    def format_value(self, value):
        if isinstance(value, str):
            try:
                value = json.loads(value or "{}")
            except ValueError:
                return value  # shown as typed, with the form's error
        try:
            value = audience_filter_parse(value).as_json()
        except AudienceError:
            pass
        return json.dumps(value or {"match": "all", "rules": []})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        context["widget"]["builder"] = {
            "keys": attribute_keys(),
            "operators": OPERATORS,
            "matches": MATCHES,
            "count_url": self.count_url,
        }
        return context


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.strip().isdigit()]


def _when(date: str, time: str) -> datetime | None:
    if not date.strip():
        return None
    value = parse_datetime(f"{date.strip()}T{(time or '00:00').strip()}")
    if value is None:
        raise AudienceError("Give the dates as YYYY-MM-DD and HH:MM.")
    return make_aware(value, get_current_timezone()) if is_naive(value) else value


def audience_count_view(request):
    """GET with the form's own field names -> {"count": n} or {"error": "..."}."""
    if not request.user.has_perm(COUNT_PERMISSION):
        raise PermissionDenied
    query = request.GET
    try:
        segment = json.loads(query.get("segment_attributes") or "{}")
    except ValueError:
        return JsonResponse({"error": "The attribute filter is not valid JSON."}, status=400)
    try:
        queryset = audience_queryset(
            lists=_ids(query.getlist("lists")),
            exclude_lists=_ids(query.getlist("exclude_lists")),
            segment=audience_filter_parse(segment),
            subscribed_after=_when(query.get("subscribed_after_0", ""),
                                   query.get("subscribed_after_1", "")),
            subscribed_before=_when(query.get("subscribed_before_0", ""),
                                    query.get("subscribed_before_1", "")))
    except AudienceError as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"count": audience_count(queryset)})
