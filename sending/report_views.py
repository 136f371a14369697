"""The admin page of the daily report, with a 14-day chart (inline SVG, no JavaScript)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.shortcuts import render

from sending.report import daily_report, history

CHART_W, CHART_H = 700, 160


def _chart(series: list[dict]) -> dict:
    peak = max([1] + [p["sent"] + p["block"] + p["bounced"] for p in series])
    width = CHART_W / max(1, len(series))
    bars = []
    for index, point in enumerate(series):
        x = index * width
        sent_h = CHART_H * point["sent"] / peak
        bad_h = CHART_H * (point["block"] + point["bounced"]) / peak
        bars.append({"x": round(x + 2, 1), "w": round(width - 4, 1),
                     "sent_y": round(CHART_H - sent_h, 1), "sent_h": round(sent_h, 1),
                     "bad_y": round(CHART_H - sent_h - bad_h, 1), "bad_h": round(bad_h, 1),
                     "label": point["day"].strftime("%d.%m"), "point": point})
    return {"bars": bars, "width": CHART_W, "height": CHART_H, "peak": peak}


@permission_required("project.view_report", raise_exception=True)
def report_view(request):
    try:
        day = datetime.strptime(request.GET.get("day", ""), "%Y-%m-%d").date()
    except ValueError:
        day = datetime.now(UTC).date() - timedelta(days=1)
    context = {
        **admin.site.each_context(request),
        "title": f"Delivery report {day:%Y-%m-%d}",
        "report": daily_report(day),
        "chart": _chart(history(14, until=day)),
        "previous": day - timedelta(days=1),
        "next": day + timedelta(days=1),
    }
    return render(request, "sending/report.html", context)
