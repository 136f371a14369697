"""The daily reputation report: what each provider did with our mail yesterday.

Per provider and pool: sent, deferred, bounced by kind, complaints, blocks, with
the change from the day before; the breaker transitions of the day with the
replies that caused them; and the complaint rate against the providers'
limits (Gmail: keep it below 0.1 %, never reach 0.3 %). Mailed to the operators
each morning and shown in the admin with a 14-day chart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from django.db.models import Count

from deliverability.models import BounceEvent, BreakerTransition
from deliverability.providers import provider_name
from sending.models import DeliveryAttempt

COMPLAINT_WARN = 0.001  # Gmail's target
COMPLAINT_STOP = 0.003  # Gmail and Yahoo: never reach
COUNTED = ("sent", "deferred", "hard", "soft", "block", "complaint", "expired")


@dataclass
class Row:
    provider: str
    pool: str
    today: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))
    yesterday: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED, 0))

    @property
    def complaint_rate(self) -> float:
        return self.today["complaint"] / self.today["sent"] if self.today["sent"] else 0.0

    @property
    def complaint_status(self) -> str:
        return complaint_status(self.complaint_rate)

    def trend(self, name: str) -> int:
        return self.today[name] - self.yesterday[name]


def complaint_status(rate: float) -> str:
    if rate >= COMPLAINT_STOP:
        return "stop"
    if rate >= COMPLAINT_WARN:
        return "warn"
    return "ok"


def _bounds(day: date, zone: tzinfo = UTC) -> tuple[datetime, datetime]:
    """Midnight to midnight in ``zone`` (23 or 25 hours on a daylight-saving day)."""
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start, end


def _counts(day: date, zone: tzinfo = UTC) -> dict[tuple[str, str], dict[str, int]]:
    start, end = _bounds(day, zone)
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTED, 0))
    attempts = (DeliveryAttempt.objects.filter(at__gte=start, at__lt=end)
                .values_list("delivery__provider", "delivery__mailing__pool__name", "outcome",
                             "kind").annotate(n=Count("id")))
    for provider, pool, outcome, kind, n in attempts:
        row = counts[(provider or "unknown", pool or "bulk")]
        if outcome == "sent":
            row["sent"] += n
        elif kind == "block":
            row["block"] += n
        elif outcome == "deferred":
            row["deferred"] += n
        elif outcome == "expired":
            row["expired"] += n
        elif kind in ("hard", "soft"):
            row[kind] += n
    events = (BounceEvent.objects.filter(created_at__gte=start, created_at__lt=end)
              .values_list("provider", "kind").annotate(n=Count("id")))
    for provider, kind, n in events:
        if kind in ("hard", "soft", "block", "complaint"):
            counts[(provider or "unknown", "bulk")][kind] += n
    return counts


@dataclass
class DailyReport:
    day: date
    rows: list[Row]
    transitions: list
    totals: dict[str, int]
    zone: tzinfo = UTC

    @property
    def complaint_rate(self) -> float:
        return self.totals["complaint"] / self.totals["sent"] if self.totals["sent"] else 0.0

    @property
    def complaint_status(self) -> str:
        return complaint_status(self.complaint_rate)

    @property
    def complaint_percent(self) -> str:
        return f"{self.complaint_rate:.2%}"


def daily_report(day: date, zone: tzinfo = UTC) -> DailyReport:
    """The report of ``day``, midnight to midnight in ``zone`` (the mail: UTC; the
    admin page: the reader's zone)."""
    today, before = _counts(day, zone), _counts(day - timedelta(days=1), zone)
    rows = []
    for provider, pool in sorted(set(today) | set(before)):
        rows.append(Row(provider, pool, today=today.get((provider, pool),
                                                        dict.fromkeys(COUNTED, 0)),
                        yesterday=before.get((provider, pool), dict.fromkeys(COUNTED, 0))))
    rows.sort(key=lambda r: (-r.today["block"], -r.today["sent"], r.provider))
    totals = {name: sum(r.today[name] for r in rows) for name in COUNTED}
    start, end = _bounds(day, zone)
    transitions = list(BreakerTransition.objects.filter(created_at__gte=start, created_at__lt=end)
                       .order_by("created_at"))
    return DailyReport(day=day, rows=rows, transitions=transitions, totals=totals, zone=zone)


def history(days: int = 14, until: date | None = None, zone: tzinfo = UTC) -> list[dict]:
    """Sent and blocked per day (days in ``zone``), for the chart."""
    until = until or datetime.now(zone).date()
    series = []
    for offset in range(days - 1, -1, -1):
        day = until - timedelta(days=offset)
        counts = _counts(day, zone)
        series.append({"day": day, "sent": sum(c["sent"] for c in counts.values()),
                       "block": sum(c["block"] for c in counts.values()),
                       "bounced": sum(c["hard"] + c["soft"] for c in counts.values())})
    return series


def report_text(report: DailyReport, site_url: str) -> str:
    lines = [f"Delivery report for {report.day:%A %d %B %Y} (UTC)", ""]
    t = report.totals
    lines.append(f"Sent {t['sent']}, deferred {t['deferred']}, hard bounces {t['hard']}, "
                 f"soft bounces {t['soft']}, blocks {t['block']}, complaints {t['complaint']} "
                 f"(rate {report.complaint_rate:.3%}: {report.complaint_status})")
    if report.complaint_status != "ok":
        lines.append("Complaint rate above Gmail's 0.1 % target: check the list's sources and "
                     "consent before the next campaign." if report.complaint_status == "warn"
                     else "Complaint rate at or above 0.3 %: providers will block you. Stop "
                          "sending and review the list.")
    lines += ["", "Per provider (change from the day before):"]
    for row in report.rows:
        parts = [f"{name} {row.today[name]} ({row.trend(name):+d})" for name in
                 ("sent", "deferred", "hard", "soft", "block", "complaint")]
        lines.append(f"  {provider_name(row.provider)} / {row.pool}: " + ", ".join(parts))
    if not report.rows:
        lines.append("  nothing was sent")
    lines += ["", "Provider breaker changes:"]
    for transition in report.transitions:
        lines.append(f"  {transition.created_at:%H:%M} {provider_name(transition.provider)} / "
                     f"{transition.pool}:"
                     f" {transition.from_state} -> {transition.to_state}: {transition.reason}")
        if transition.reply:
            lines.append(f"      their answer: {transition.reply}")
    if not report.transitions:
        lines.append("  none")
    lines += ["", f"Details: {site_url}/admin/report/?day={report.day:%Y-%m-%d}"]
    return "\n".join(lines) + "\n"


def send_daily_report(day: date | None = None) -> int:
    """Mail yesterday's report to the operators; returns the number of mails."""
    from django.conf import settings

    from sending.alerts import operator_addresses
    from sending.transactional import transactional_email_send

    day = day or datetime.now(UTC).date() - timedelta(days=1)
    report = daily_report(day)
    text = report_text(report, settings.SITE_URL)
    subject = (f"[postwarden] Delivery report {day:%Y-%m-%d}: {report.totals['sent']} sent, "
               f"{report.totals['block']} blocks, complaints {report.complaint_status}")
    recipients = operator_addresses()
    for address in recipients:
        transactional_email_send(to=address, subject=subject, body_text=text, purpose="report")
    return len(recipients)
