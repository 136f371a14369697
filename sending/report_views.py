"""The admin page of the daily report, with a 14-day chart (HTML bars, no JavaScript).

The page opens on today in the reader's zone (config.operator_time), so a send of
a minute ago is on it; days run midnight to midnight in that zone.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from config.operator_time import operator_today, operator_zone
from sending.report import daily_report, history

MAX_DAYS_BACK = 20 * 366
AXIS_DIVISIONS = 4  # the chart's grid lines (pw-track's background) are quarters


def axis_top(peak: int) -> int:
    """The axis end: ``AXIS_DIVISIONS`` whole, round steps (1, 1.5, 2, 2.5, 3, 4, 5,
    6 or 8 x 10^n), at least ``peak``: from 5 up, the longest bar fills over 60 % of it."""
    peak = max(1, peak)
    raw = peak / AXIS_DIVISIONS
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    for mantissa in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        step = mantissa * magnitude
        if step >= raw and step == int(step):
            return int(step) * AXIS_DIVISIONS
    return 10 * magnitude * AXIS_DIVISIONS  # not reached: 10 x magnitude always fits


def chart(series: list[dict], today) -> dict:
    """Rows of the bar chart: one per day, bar widths in % of the axis, with values."""
    top = axis_top(max([0] + [p["sent"] + p["block"] + p["bounced"] for p in series]))
    rows = []
    for point in series:
        bad = point["block"] + point["bounced"]
        rows.append({"day": point["day"], "label": point["day"].strftime("%a %d"),
                     "sent": point["sent"], "bad": bad, "point": point,
                     "sent_pct": round(100 * point["sent"] / top, 2),
                     "bad_pct": round(100 * bad / top, 2), "today": point["day"] == today})
    step = top // AXIS_DIVISIONS
    ticks = [{"value": step * i, "pct": 100 * i // AXIS_DIVISIONS}
             for i in range(AXIS_DIVISIONS + 1)]
    return {"rows": rows, "top": top, "ticks": ticks}


@permission_required("project.view_report", raise_exception=True)
def report_view(request):
    zone, today = operator_zone(request), operator_today(request)
    try:
        day = datetime.strptime(request.GET.get("day", "")[:10], "%Y-%m-%d").date()
    except ValueError:
        day = today
    if not today - timedelta(days=MAX_DAYS_BACK) <= day <= today:
        day = today  # the future has no report; year 1 or 9999 would overflow the bounds
    context = {
        **admin.site.each_context(request),
        "title": f"Delivery report {day:%Y-%m-%d}",
        "report": daily_report(day, zone),
        "chart": chart(history(14, until=day, zone=zone), today),
        "zone": zone.key,
        "today": today,
        "is_today": day == today,
        "previous": day - timedelta(days=1),
        "next": day + timedelta(days=1) if day < today else None,
    }
    return render(request, "sending/report.html", context)
