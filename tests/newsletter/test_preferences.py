"""The preference page: lists, name, export my data, erase me."""

from __future__ import annotations

import json

import pytest

from deliverability.models import Suppression
from deliverability.suppression import is_suppressed, suppress
from newsletter import tokens
from newsletter.models import ConsentRecord, MailingList, Subscriber, Subscription
from newsletter.services import Client, subscription_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(mailing_list):
    """Ann, confirmed on Shop News through the signup form."""
    subscription_create(mailing_list=mailing_list, email="ann@example.org", name="Ann",
                        client=Client(ip="198.51.100.7", user_agent="Firefox"))
    Subscription.objects.update(status="confirmed")
    return Subscriber.objects.get()


def _page(client, person):
    path = f"/p/{tokens.preferences_token(person.id)}/"
    page = client.get(path)
    assert page.status_code == 200
    return path, page, str(page.context["csrf_token"])


def test_preferences_change_name_and_lists_and_record_it(client, person, mailing_list):
    weekly = MailingList.objects.create(name="Weekly", slug="weekly")
    MailingList.objects.create(name="Internal", slug="internal", public=False)
    path, page, csrf = _page(client, person)
    assert [c[1] for c in page.context["form"].fields["lists"].choices] == [
        "Shop News", "Weekly"]  # private lists are not offered
    response = client.post(path, {"csrfmiddlewaretoken": csrf, "name": "Ann B.",
                                  "lists": [weekly.id]})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.name == "Ann B."
    statuses = dict(Subscription.objects.values_list("mailing_list__slug", "status"))
    assert statuses == {"shop-news": "unsubscribed", "weekly": "confirmed"}
    events = set(ConsentRecord.objects.values_list("event", "source", "list_slug"))
    assert ("unsubscribe", "preferences", "shop-news") in events
    assert ("resubscribe", "preferences", "weekly") in events


def test_preferences_never_resubscribe_a_suppressed_address(client, person, mailing_list):
    Subscription.objects.update(status="unsubscribed")
    suppress(address="ann@example.org", reason="complaint")
    path, _, csrf = _page(client, person)
    client.post(path, {"csrfmiddlewaretoken": csrf, "lists": [mailing_list.id]})
    assert Subscription.objects.get().status == "unsubscribed"


def test_preferences_refuse_a_name_with_line_breaks(client, person):
    path, _, csrf = _page(client, person)
    response = client.post(path, {"csrfmiddlewaretoken": csrf, "name": "Ann\r\nBcc: x@y.z"})
    assert response.status_code == 400
    person.refresh_from_db()
    assert person.name == "Ann"


def test_export_my_data_gives_everything_as_json(client, person):
    path, _, csrf = _page(client, person)
    response = client.post(path + "export/", {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert "attachment" in response["Content-Disposition"]
    data = json.loads(response.content)
    assert data["email"] == "ann@example.org" and data["name"] == "Ann"
    assert data["subscriptions"][0]["list_slug"] == "shop-news"
    signup = data["consent_records"][0]
    assert (signup["event"], signup["ip"], signup["user_agent"]) == (
        "signup", "198.51.100.7", "Firefox")
    assert "unsubscribe" in signup["consent_text"]


def test_export_needs_post_with_csrf(client, person):
    path, _, _csrf = _page(client, person)
    assert client.get(path + "export/").status_code == 405
    assert client.post(path + "export/").status_code == 403


def test_erase_removes_personal_data_but_keeps_the_suppression(client, person, mailing_list):
    path, _, csrf = _page(client, person)
    confirm_page = client.get(path + "erase/")
    assert confirm_page.status_code == 200 and Subscriber.objects.exists()  # GET erases nothing
    response = client.post(path + "erase/", {"csrfmiddlewaretoken": csrf, "confirm": "yes"})
    assert response.status_code == 200
    assert not Subscriber.objects.exists() and not Subscription.objects.exists()
    assert Suppression.objects.get(address="ann@example.org").reason == "erased"
    records = ConsentRecord.objects.all()
    assert {r.event for r in records} == {"signup", "erase"}
    for record in records:  # proof kept, person gone
        assert (record.address, record.ip, record.user_agent) == ("", None, "")
        assert record.address_sha256 == ConsentRecord.hash_address("ann@example.org")
    assert client.get(path).status_code == 404  # the link now leads nowhere
    # a new signup or import cannot silently bring the address back
    subscription_create(mailing_list=mailing_list, email="ann@example.org")
    assert not Subscriber.objects.exists() and is_suppressed("ann@example.org")
