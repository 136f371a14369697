"""The daily delivery report: counts per provider, trend, transitions, complaint rate."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from deliverability.models import BounceEvent, BreakerTransition, InboundMessage
from sending.models import Delivery, DeliveryAttempt, Mailing, RelayPool, TransactionalEmail
from sending.report import daily_report, report_text

DAY = datetime(2026, 11, 20, tzinfo=UTC).date()


def _at(day, hour=10):
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour)


@pytest.fixture
def traffic(db):
    pool = RelayPool.objects.create(name="bulk", purpose="bulk")
    mailing = Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                     text_template="t", pool=pool)
    outcomes = [("google", "sent", "delivered")] * 900 + [("google", "deferred", "soft")] * 20 \
        + [("swisscom", "sent", "delivered")] * 50 + [("swisscom", "deferred", "block")] * 3 \
        + [("google", "bounced", "hard")] * 10
    for index, (provider, outcome, kind) in enumerate(outcomes):
        delivery = Delivery.objects.create(mailing=mailing, address=f"r{index}@{provider}.example",
                                           provider=provider, state=outcome)
        DeliveryAttempt.objects.create(delivery=delivery, at=_at(DAY), code=250, kind=kind,
                                       outcome=outcome)
    # the day before: less google mail
    old = Delivery.objects.create(mailing=mailing, address="old@google.example",
                                  provider="google", state="sent")
    for _ in range(3):
        DeliveryAttempt.objects.create(delivery=old, at=_at(DAY - timedelta(days=1)), code=250,
                                       kind="delivered", outcome="sent")
    message = InboundMessage.objects.create(key="k" * 64, raw_compressed=b"", source="smtp")
    for position in range(2):
        event = BounceEvent.objects.create(message=message, position=position, kind="complaint",
                                           provider="google", address=f"c{position}@x.example")
        BounceEvent.objects.filter(id=event.id).update(created_at=_at(DAY, 12))
    transition = BreakerTransition.objects.create(
        provider="swisscom", pool="bulk", from_state="ok", to_state="paused",
        reason="paused for 4h after block answers", reply="554 5.7.1 not allowed")
    BreakerTransition.objects.filter(id=transition.id).update(created_at=_at(DAY, 11))


def test_report_counts_per_provider_with_trend_and_transitions(traffic):
    report = daily_report(DAY)
    google = next(r for r in report.rows if r.provider == "google")
    swisscom = next(r for r in report.rows if r.provider == "swisscom")
    assert google.today["sent"] == 900 and google.trend("sent") == 897
    assert google.today["hard"] == 10 and google.today["complaint"] == 2
    assert swisscom.today["block"] == 3 and swisscom.pool == "bulk"
    assert report.rows[0].provider == "swisscom"  # blocks first
    assert [t.to_state for t in report.transitions] == ["paused"]
    assert report.totals["sent"] == 950
    assert report.complaint_status == "warn"  # 2 / 950 = 0.21 %: above 0.1 %, below 0.3 %
    text = report_text(report, "https://news.example.org")
    assert "Swisscom (Bluewin) / bulk: ok -> paused" in text and "554 5.7.1 not allowed" in text
    assert "Google (Gmail, Google Workspace) / bulk: sent 900 (+897)" in text


def test_report_is_mailed_to_operators(traffic, monkeypatch):
    monkeypatch.delenv("OPERATOR_EMAILS", raising=False)
    User.objects.create_superuser("ops", "ops@example.org", "a-long-password-1")
    call_command("send_daily_report", "--day", DAY.isoformat())
    mail = TransactionalEmail.objects.get(purpose="report")
    assert mail.to == "ops@example.org" and "950 sent, 3 blocks" in mail.subject


def test_report_page_shows_chart_and_rows(admin_client, traffic):
    page = admin_client.get(f"/admin/report/?day={DAY}").content.decode()
    assert 'id="history-chart"' in page and "Swisscom (Bluewin)" in page and "warn" in page


def test_an_empty_day_is_fine(db):
    report = daily_report(DAY)
    assert report.rows == [] and report.complaint_status == "ok"
    assert "nothing was sent" in report_text(report, "")
