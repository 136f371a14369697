"""The API's campaign report says waiting, deferred and the paused providers as the page does."""

import pytest

from deliverability.breaker.engine import Breaker
from tests.newsletter.test_campaign_report_paused import OUTLOOK, sending_campaign  # noqa: F401

pytestmark = pytest.mark.django_db


def test_report_has_waiting_deferred_and_paused(api, sending_campaign, redis_client):  # noqa: F811
    Breaker(redis=redis_client).pause("microsoft_consumer", "bulk", seconds=3600, actor="ops")
    body = api().get(f"/api/v1/campaigns/{sending_campaign.pk}/report/").json()
    assert (body["waiting"], body["deferred"], body["percent_done"]) == (5, 1, 25)
    outlook = next(p for p in body["providers"] if p["provider"] == "microsoft_consumer")
    assert (outlook["name"], outlook["waiting"], outlook["deferred"]) == (OUTLOOK, 4, 0)
    [paused] = body["paused"]
    assert (paused["provider"], paused["name"], paused["state"], paused["waiting"]) == (
        "microsoft_consumer", OUTLOOK, "paused", 4)
    assert paused["until"]
