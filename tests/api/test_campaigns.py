"""Campaigns through the API: the admin's services and permissions."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from newsletter.campaigns import layout_default
from newsletter.models import Campaign, Subscriber, Subscription
from sending.models import TransactionalEmail

pytestmark = pytest.mark.django_db


@pytest.fixture
def layout(db):
    layout = layout_default()
    layout.postal_address = "Shop AG, Bahnhofstrasse 1, 8001 Zürich"
    layout.save()
    return layout


@pytest.fixture
def reader(mailing_list):
    subscriber = Subscriber.objects.create(email="ann@example.org", name="Ann")
    return Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                       status=Subscription.Status.CONFIRMED)


def draft(client, layout, **fields):
    body = {"name": "Spring", "subject": "Hello {{ subscriber.name|default:\"reader\" }}",
            "body": "# Hi {{ subscriber.name }}\n\nNews.", "layout": layout.id,
            "lists": ["shop-news"], **fields}
    return client.post("/api/v1/campaigns/", body, format="json")


def test_draft_preview_test_schedule_unschedule_cancel(api, layout, reader):
    client = api()
    created = draft(client, layout)
    assert created.status_code == 201, created.json()
    cid = created.json()["id"]
    assert created.json()["state"] == "draft" and created.json()["lists"] == ["shop-news"]
    assert client.patch(f"/api/v1/campaigns/{cid}/", {"preheader": "Spring news"},
                        format="json").json()["preheader"] == "Spring news"
    preview = client.get(f"/api/v1/campaigns/{cid}/preview/",
                         {"subscription": reader.id}).json()
    assert preview["subject"] == "Hello Ann" and "Hi Ann" in preview["html"]
    sent = client.post(f"/api/v1/campaigns/{cid}/test/", {"addresses": ["qa@shop.example"]},
                       format="json")
    assert sent.status_code == 202
    mail = TransactionalEmail.objects.get(purpose="test")
    assert mail.to == "qa@shop.example" and mail.subject.startswith("[TEST]")
    scheduled = client.post(f"/api/v1/campaigns/{cid}/schedule/", {"now": True},
                            format="json")
    assert scheduled.status_code == 200, scheduled.json()
    assert scheduled.json()["state"] == "scheduled"
    assert client.post(f"/api/v1/campaigns/{cid}/unschedule/").json()["state"] == "draft"
    assert client.post(f"/api/v1/campaigns/{cid}/cancel/").json()["state"] == "cancelled"
    refused = client.patch(f"/api/v1/campaigns/{cid}/", {"subject": "x"}, format="json")
    assert refused.status_code == 422 and refused["Content-Type"] == "application/problem+json"
    report = client.get(f"/api/v1/campaigns/{cid}/report/").json()
    assert report["started"] is False and report["audience"] == 1
    flags = set(LogEntry.objects.filter(object_id=str(cid)).values_list("change_message",
                                                                         flat=True))
    assert any("[schedule]" in m for m in flags) and any("[cancel]" in m for m in flags)


def test_lifecycle_refusals_are_problems(api, layout, reader):
    client = api()
    cid = draft(client, layout).json()["id"]
    response = client.post(f"/api/v1/campaigns/{cid}/pause/", {}, format="json")
    assert response.status_code == 422
    assert "has not started" in response.json()["detail"]
    incomplete = draft(client, layout, subject="").json()["id"]
    refused = client.post(f"/api/v1/campaigns/{incomplete}/schedule/", {"now": True},
                          format="json")
    assert refused.status_code == 422 and "checklist" in refused.json()["detail"]
    assert Campaign.objects.get(id=incomplete).state == "draft"


def test_bad_personalisation_is_refused(api, layout, mailing_list):
    response = draft(api(), layout, body="{{ secret_key }}")
    assert response.status_code == 400 and "body" in response.json()["errors"]
    assert not Campaign.objects.exists()


def test_scheduling_needs_the_admins_schedule_permission(api, layout, reader):
    editor = api(scopes=["read", "campaigns"], superuser=False, perms=[
        "newsletter.view_campaign", "newsletter.add_campaign", "newsletter.change_campaign"])
    cid = draft(editor, layout).json()["id"]
    assert editor.post(f"/api/v1/campaigns/{cid}/test/", {"addresses": ["qa@shop.example"]},
                       format="json").status_code == 202
    assert editor.post(f"/api/v1/campaigns/{cid}/schedule/", {"now": True},
                       format="json").status_code == 403
    assert Campaign.objects.get(id=cid).state == "draft"


def test_campaign_writes_need_the_campaigns_scope(api, layout, mailing_list):
    client = api(scopes=["read", "subscribers", "transactional"])
    assert draft(client, layout).status_code == 403
    assert client.get("/api/v1/campaigns/").status_code == 200


def test_an_unknown_time_zone_is_refused_and_a_known_one_stored_by_its_name(api, layout,
                                                                            reader):
    client = api()
    cid = draft(client, layout).json()["id"]
    refused = client.post(f"/api/v1/campaigns/{cid}/schedule/",
                          {"when": "2031-07-01T09:15:00Z", "timezone": "Europe/Berln"},
                          format="json")
    assert refused.status_code == 422 and "Did you mean Europe/Berlin" in refused.json()[
        "detail"]
    assert Campaign.objects.get(id=cid).state == "draft"
    done = client.post(f"/api/v1/campaigns/{cid}/schedule/",
                       {"when": "2031-07-01T09:15:00Z", "timezone": "europe/berlin"},
                       format="json")
    assert done.status_code == 200, done.json()
    assert Campaign.objects.get(id=cid).schedule_timezone == "Europe/Berlin"


def test_the_audience_rules_are_the_admins_filter_model(api, layout, mailing_list):
    from newsletter.campaigns import campaign_audience_size

    for email, city in (("ann@example.org", "Berlin"), ("bob@example.org", "Hamburg"),
                        ("cem@example.org", "berlin-Mitte")):
        person = Subscriber.objects.create(email=email, attributes={"City": city})
        Subscription.objects.create(subscriber=person, mailing_list=mailing_list,
                                    status=Subscription.Status.CONFIRMED)
    client = api()
    rules = {"match": "any", "rules": [{"attribute": "city", "op": "contains", "value": "BERL"}]}
    created = draft(client, layout, segment_attributes=rules)
    assert created.status_code == 201, created.json()
    stored = created.json()["segment_attributes"]
    assert stored["rules"][0]["case_sensitive"] is False  # the admin's default, filled in
    assert campaign_audience_size(Campaign.objects.get(pk=created.json()["id"])) == 2
    refused = draft(client, layout, segment_attributes={
        "match": "all", "rules": [{"attribute": "city", "op": "sounds_like", "value": "x"}]})
    assert refused.status_code in (400, 422)
    assert refused["Content-Type"] == "application/problem+json"
    assert "sounds_like" in str(refused.json()) or "operator" in str(refused.json()).lower()
    assert Campaign.objects.count() == 1
