"""The time zone an editor schedules in: labels, the searchable field, the server's check."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime

import pytest

from newsletter.models import Campaign
from newsletter.timezones import (
    UnknownTimezone,
    timezone_choices,
    timezone_label,
    timezone_names,
    timezone_resolve,
)
from tests.newsletter.test_campaign_admin import editor, quiet, setup  # noqa: F401
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
WINTER = datetime(2031, 1, 15, 13, 5, tzinfo=UTC)


def test_labels_carry_the_offset_the_time_there_and_the_place_in_words():
    assert timezone_label("Europe/Berlin", WINTER) == "Europe/Berlin — UTC+01:00, 14:05 now"
    assert timezone_label("America/New_York", WINTER) == (
        "America/New_York (New York) — UTC-05:00, 08:05 now")
    assert timezone_label("Asia/Kolkata", WINTER).endswith("UTC+05:30, 18:35 now")
    names = [name for name, _ in timezone_choices(WINTER)]
    assert names == sorted(names) and "Europe/Berlin" in names and "localtime" not in names
    assert set(names) <= zoneinfo.available_timezones()


@pytest.mark.parametrize("typed, name", [
    ("Europe/Berlin", "Europe/Berlin"), ("europe/berlin", "Europe/Berlin"),
    (" America/New York ", "America/New_York"),
    ("Europe/Berlin — UTC+01:00, 14:05 now", "Europe/Berlin"), ("utc", "UTC"),
])
def test_a_zone_is_found_by_its_name_whatever_the_case(typed, name):
    assert timezone_resolve(typed) == name


def test_an_unknown_zone_is_refused_with_the_closest_names():
    with pytest.raises(UnknownTimezone, match=r"Unknown time zone 'Europe/Berln'\. "
                                              r"Did you mean Europe/Berlin"):
        timezone_resolve("Europe/Berln")
    with pytest.raises(UnknownTimezone, match="Choose one from the list"):
        timezone_resolve("Mars/Olympus")
    with pytest.raises(UnknownTimezone):
        timezone_resolve("x" * 5000)
    assert len(timezone_names()) > 300


def test_the_schedule_field_searches_every_zone_with_labels(editor, setup):  # noqa: F811
    campaign = setup["campaign"]
    html = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert 'list="schedule-timezones"' in html and 'id="schedule-timezone"' in html
    assert html.count("<option value=", html.index('id="schedule-timezones"')) >= len(
        timezone_names())
    assert 'label="Europe/Berlin — UTC+' in html
    assert "newsletter/timezone.js" in html
    assert 'data-saved=""' in html  # no zone chosen yet: the browser's is preselected


def test_an_unknown_zone_is_refused_and_what_was_typed_comes_back(editor, setup):  # noqa: F811
    campaign = setup["campaign"]
    url = f"/admin/newsletter/campaign/{campaign.pk}/action/"
    response = editor.post(url, {"action": "schedule", "when": "2031-07-01T09:15",
                                 "timezone": "Europe/Berln"})
    assert response.status_code == 302 and "when=2031-07-01T09%3A15" in response["Location"]
    page = editor.get(response["Location"]).content.decode()
    assert "Unknown time zone &#x27;Europe/Berln&#x27;. Did you mean Europe/Berlin" in page
    assert 'value="2031-07-01T09:15"' in page and 'value="Europe/Berln"' in page
    assert Campaign.objects.get(pk=campaign.pk).state == "draft"


def test_a_zone_typed_in_lower_case_is_stored_by_its_name(editor, setup):  # noqa: F811
    campaign = setup["campaign"]
    response = editor.post(f"/admin/newsletter/campaign/{campaign.pk}/action/",
                           {"action": "schedule", "when": "2031-07-01T09:15",
                            "timezone": "america/new york"})
    assert response.cookies["pw_tz"].value == "America/New_York"
    campaign.refresh_from_db()
    assert campaign.schedule_timezone == "America/New_York"
    assert campaign.scheduled_at == datetime(2031, 7, 1, 13, 15, tzinfo=UTC)
    html = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert 'value="America/New_York"' in html and 'data-saved="1"' in html
