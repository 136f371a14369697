"""The engagement part of a campaign report: clicks per link, opens, a 48-hour timeline.

Read-only, from ``TrackingCount`` and ``TrackingUnique`` (never from linked
events, so counts-only campaigns report the same figures).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from newsletter.tracking import campaign_tracking
from newsletter.tracking_models import TrackedLink, TrackingCount, TrackingUnique

TIMELINE_HOURS = 48
CHART_WIDTH = 480
CHART_HEIGHT = 120
REASONS = {
    "apple_mpp": "Apple Mail Privacy Protection",
    "prefetch": "fetched within seconds of delivery",
    "burst": "every link within a second (link scanner)",
    "scanner_ua": "scanner or script user agent",
    "no_user_agent": "no user agent",
}


@dataclass
class LinkRow:
    index: int
    url: str
    human: int = 0
    machine: int = 0


@dataclass
class Bar:
    x: float
    hour: int
    human_clicks: int
    human_opens: int
    machine: int
    y_clicks: float = 0
    h_clicks: float = 0
    y_opens: float = 0
    h_opens: float = 0
    y_machine: float = 0
    h_machine: float = 0


@dataclass
class TrackingReport:
    clicks_tracked: bool
    opens_tracked: bool
    privacy: str
    links: list[LinkRow]
    clicks_human: int = 0
    clicks_machine: int = 0
    opens_human: int = 0
    opens_machine: int = 0
    unique_clickers: int = 0
    unique_openers: int = 0
    machine_reasons: dict[str, dict[str, int]] = field(default_factory=dict)
    bars: list[Bar] = field(default_factory=list)
    chart_max: int = 0
    clickers_by_provider: dict[str, int] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.clicks_tracked or self.opens_tracked

    @property
    def reasons_table(self) -> list[tuple[str, int, int]]:
        rows = []
        for reason, label in REASONS.items():
            opens = self.machine_reasons.get("open", {}).get(reason, 0)
            clicks = self.machine_reasons.get("click", {}).get(reason, 0)
            if opens or clicks:
                rows.append((label, opens, clicks))
        return rows


def tracking_report(campaign, started_at) -> TrackingReport:
    choice = campaign_tracking(campaign)
    links = {index: LinkRow(index, url) for index, url in
             TrackedLink.objects.filter(campaign=campaign).values_list("index", "url")}
    report = TrackingReport(clicks_tracked=choice.clicks, opens_tracked=choice.opens,
                            privacy=choice.privacy, links=[])
    hours: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])  # clicks, opens, machine
    reasons: dict[str, dict[str, int]] = {"open": defaultdict(int), "click": defaultdict(int)}
    start_hour = started_at.replace(minute=0, second=0, microsecond=0) if started_at else None
    for kind, index, hour, reason, n in (TrackingCount.objects.filter(campaign=campaign)
                                         .values_list("kind", "link_index", "hour",
                                                      "machine_reason", "count")):
        machine = bool(reason)
        if kind == "click":
            row = links.setdefault(index, LinkRow(index, "(unknown link)"))
            if machine:
                row.machine += n
                report.clicks_machine += n
            else:
                row.human += n
                report.clicks_human += n
        elif machine:
            report.opens_machine += n
        else:
            report.opens_human += n
        if machine:
            reasons[kind][reason] += n
        if start_hour is not None:
            offset = int((hour - start_hour) / timedelta(hours=1))
            if 0 <= offset < TIMELINE_HOURS:
                slot = hours[offset]
                slot[2 if machine else (0 if kind == "click" else 1)] += n
    report.links = sorted(links.values(), key=lambda r: (-r.human, r.index))
    report.machine_reasons = {k: dict(v) for k, v in reasons.items()}
    for kind, provider, n in (TrackingUnique.objects.filter(campaign=campaign)
                              .values_list("kind", "provider", "count")):
        if provider == "":
            if kind == "click":
                report.unique_clickers = n
            else:
                report.unique_openers = n
        elif kind == "click":
            report.clickers_by_provider[provider] = n
    _chart(report, hours)
    return report


def _chart(report: TrackingReport, hours: dict[int, list[int]]) -> None:
    """Stacked hourly bars as SVG coordinates (no JavaScript on the page)."""
    top = max([sum(v) for v in hours.values()] or [0])
    report.chart_max = top
    step = CHART_WIDTH / TIMELINE_HOURS
    for hour in range(TIMELINE_HOURS):
        clicks, opens, machine = hours.get(hour, [0, 0, 0])
        bar = Bar(x=round(hour * step + 1, 1), hour=hour, human_clicks=clicks,
                  human_opens=opens, machine=machine)
        if top:
            base = CHART_HEIGHT
            for name, value in (("clicks", clicks), ("opens", opens), ("machine", machine)):
                height = round(CHART_HEIGHT * value / top, 1)
                base -= height
                setattr(bar, f"h_{name}", height)
                setattr(bar, f"y_{name}", round(base, 1))
        report.bars.append(bar)
