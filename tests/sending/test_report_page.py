"""The daily report page (issue 21): opens on today in the reader's zone, days run
midnight to midnight there, and the chart has an axis and values."""

import re
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from config.operator_time import operator_today, operator_zone
from sending.models import Delivery, DeliveryAttempt, Mailing
from sending.report import daily_report
from sending.report_views import axis_top, chart
from tests.sending.test_report import DAY, traffic  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _sent(at: datetime, provider="microsoft_consumer"):
    mailing = Mailing.objects.first() or Mailing.objects.create(
        from_email="n@x.example", subject_template="s", text_template="t")
    delivery = Delivery.objects.create(mailing=mailing, address=f"{at.timestamp()}@x.example",
                                       provider=provider, state="sent", attempts=1)
    DeliveryAttempt.objects.create(delivery=delivery, at=at, code=250, kind="delivered",
                                   outcome="sent")


class _Request:
    def __init__(self, cookie=None):
        self.COOKIES = {"pw_tz": cookie} if cookie is not None else {}


def test_the_readers_zone_cookie_then_time_zone(settings):
    settings.TIME_ZONE = "America/New_York"
    assert operator_zone(_Request()).key == "America/New_York"
    assert operator_zone(_Request("Europe/Berlin")).key == "Europe/Berlin"
    for hostile in ("../../etc/passwd", "Nowhere/Atlantis", "x" * 200, ""):
        assert operator_zone(_Request(hostile)).key == "America/New_York"
    late = datetime(2026, 12, 4, 23, 30, tzinfo=UTC)  # already the 5th in Berlin
    assert str(operator_today(_Request("Europe/Berlin"), now=late)) == "2026-12-05"
    assert str(operator_today(_Request("UTC"), now=late)) == "2026-12-04"


def test_days_run_midnight_to_midnight_in_the_zone(db):
    _sent(datetime(2026, 11, 20, 23, 30, tzinfo=UTC))  # 00:30 on the 21st in Berlin
    assert daily_report(DAY).totals["sent"] == 1
    assert daily_report(DAY, BERLIN).totals["sent"] == 0
    assert daily_report(DAY + timedelta(days=1), BERLIN).totals["sent"] == 1


def test_the_page_opens_on_today_with_a_send_of_a_minute_ago(admin_client, settings):
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: its today is often UTC's tomorrow
    _sent(timezone.now() - timedelta(minutes=1))
    page = admin_client.get("/admin/report/").content.decode()
    today = datetime.now(zoneinfo.ZoneInfo("Pacific/Kiritimati")).date()
    assert f"Delivery report {today:%Y-%m-%d}" in page and "Today, " in page
    assert "Nothing was sent that day" not in page
    rows = re.search(r'<table id="report-rows".*?</table>', page, re.S).group(0)
    assert "Microsoft Outlook.com / Hotmail" in rows and "<td>1</td>" in rows
    day_line = page.split('id="report-day"')[1].split("</p>")[0]
    assert "&rsaquo;" not in day_line and "today</a>" not in day_line  # no tomorrow link


def test_nothing_yet_today_says_so(admin_client):
    page = admin_client.get("/admin/report/").content.decode()
    assert "Nothing sent yet today." in page
    past = admin_client.get(f"/admin/report/?day={DAY}").content.decode()
    assert "Nothing was sent that day." in past and "Today, " not in past


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2999-01-01", "nonsense",
                                 "2026-02-30"])
def test_a_day_out_of_range_opens_today(admin_client, day):
    response = admin_client.get(f"/admin/report/?day={day}")
    assert response.status_code == 200 and "Today, " in response.content.decode()


@pytest.mark.parametrize(("peak", "top"), [
    (0, 4), (1, 4), (4, 4), (5, 8), (9, 12), (17, 20), (41, 60), (99, 100), (101, 120),
    (950, 1000), (963, 1000), (1001, 1200), (123456, 160000)])
def test_axis_ends_on_whole_steps(peak, top):
    assert axis_top(peak) == top and top >= peak and (top // 4) * 4 == top


def test_chart_rows_have_widths_and_values():
    day = DAY
    series = [{"day": day - timedelta(days=1), "sent": 0, "block": 0, "bounced": 0},
              {"day": day, "sent": 950, "block": 3, "bounced": 10}]
    drawn = chart(series, today=day)
    assert drawn["top"] == 1000
    assert [(t["value"], t["pct"]) for t in drawn["ticks"]] == [
        (0, 0), (250, 25), (500, 50), (750, 75), (1000, 100)]
    assert drawn["rows"][1]["sent_pct"] == 95.0 and drawn["rows"][1]["bad_pct"] == 1.3
    assert drawn["rows"][1]["today"] and not drawn["rows"][0]["today"]


def test_the_page_draws_axis_and_values(admin_client, traffic):  # noqa: F811
    page = admin_client.get(f"/admin/report/?day={DAY}").content.decode()
    axis = re.search(r'<div class="pw-axis" id="history-axis".*?</div>', page, re.S).group(0)
    ticks = re.findall(r'<span style="left:(\d+)%">(\d+)</span>', axis)
    assert ticks == [("0", "0"), ("25", "250"), ("50", "500"), ("75", "750"), ("100", "1000")]
    assert '<span class="v-sent">950</span> / <span class="v-bad">13</span>' in page
    assert page.count('class="pw-track"') == 14
    assert "Swisscom (Bluewin)" in page and ">swisscom<" not in page
