"""The preference page: lists, name, export my data, erase me."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from deliverability.models import Suppression
from deliverability.suppression import is_suppressed, suppress
from newsletter import conf, tokens
from newsletter.models import ConsentRecord, MailingList, Subscriber, Subscription
from newsletter.services import Client, subscriber_preferences_update, subscription_create
from sending.models import TransactionalEmail
from tests.newsletter.helpers import link_path

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
    old = MailingList.objects.create(name="Archive", slug="archive", public=False)
    Subscription.objects.create(subscriber=person, mailing_list=old, status="unsubscribed",
                                confirmed_at=timezone.now())
    path, page, csrf = _page(client, person)
    # Only the lists the person was on; other public lists link to their signup page.
    assert [c[1] for c in page.context["form"].fields["lists"].choices] == [
        "Archive", "Shop News"]
    assert [ml.slug for ml in page.context["other_lists"]] == ["weekly"]
    assert f'href="/s/{weekly.slug}/"' in page.content.decode()
    response = client.post(path, {"csrfmiddlewaretoken": csrf, "name": "Ann B.",
                                  "lists": [old.id]})
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.name == "Ann B."
    statuses = dict(Subscription.objects.values_list("mailing_list__slug", "status"))
    assert statuses == {"shop-news": "unsubscribed", "archive": "confirmed"}
    events = set(ConsentRecord.objects.values_list("event", "source", "list_slug"))
    assert ("unsubscribe", "preferences", "shop-news") in events
    assert ("resubscribe", "preferences", "archive") in events


def test_a_preference_link_never_subscribes_to_a_list_the_person_was_not_on(
        client, person, mailing_list):
    weekly = MailingList.objects.create(name="Weekly", slug="weekly")
    pending = MailingList.objects.create(name="Pending", slug="pending")
    Subscription.objects.create(subscriber=person, mailing_list=pending, status="pending")
    path, _, csrf = _page(client, person)
    response = client.post(path, {"csrfmiddlewaretoken": csrf, "name": "Ann",
                                  "lists": [mailing_list.id, weekly.id, pending.id]})
    assert response.status_code == 400  # not a choice on this page
    changes = subscriber_preferences_update(  # nor through the service
        subscriber_id=person.id, name="Ann", list_ids={mailing_list.id, weekly.id, pending.id},
        client=Client(source="preferences"))
    assert changes == {"subscribed": 0, "unsubscribed": 0}
    statuses = dict(Subscription.objects.values_list("mailing_list__slug", "status"))
    assert statuses == {"shop-news": "confirmed", "pending": "pending"}


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


def _fresh_link(client, person, action: str) -> str:
    """Ask for the fresh link on the preference page; the path of the link it mails."""
    path, _, csrf = _page(client, person)
    before = set(TransactionalEmail.objects.filter(purpose="privacy").values_list("id", flat=True))
    response = client.post(path + "privacy/", {"csrfmiddlewaretoken": csrf, "action": action})
    assert response.status_code == 200 and "Check your inbox" in response.content.decode()
    mail = TransactionalEmail.objects.filter(purpose="privacy").exclude(id__in=before).get()
    assert mail.to == person.email
    return link_path(mail.body_text, f"/me/{action}/")


def test_export_my_data_gives_everything_as_json(client, person):
    link = _fresh_link(client, person, "export")
    page = client.get(link)  # a GET (a scanner) downloads nothing
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    response = client.post(link, {"csrfmiddlewaretoken": str(page.context["csrf_token"])})
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


def test_the_preference_link_alone_neither_exports_nor_erases(client, person):
    token = tokens.preferences_token(person.id)
    _path, _, csrf = _page(client, person)
    for action in ("export", "erase"):
        assert client.post(f"/p/{token}/{action}/", {"csrfmiddlewaretoken": csrf,
                                                     "confirm": "yes"}).status_code == 404
        response = client.post(f"/me/{action}/{token}/", {"csrfmiddlewaretoken": csrf,
                                                          "confirm": "yes"})
        assert response.status_code == 400  # a preference token is not a fresh link
    assert Subscriber.objects.filter(id=person.id).exists()
    # An export link does not erase, and the other way round.
    export = _fresh_link(client, person, "export").split("/")[-2]
    assert client.post(f"/me/erase/{export}/", {"csrfmiddlewaretoken": csrf,
                                               "confirm": "yes"}).status_code == 400
    assert Subscriber.objects.filter(id=person.id).exists()


def test_a_fresh_link_expires_within_the_hour(client, person, monkeypatch):
    import time

    link = _fresh_link(client, person, "erase")
    later = time.time() + conf.PRIVACY_LINK_MAX_AGE_MINUTES * 60 + 5
    monkeypatch.setattr(time, "time", lambda: later)
    assert client.get(link).status_code == 410
    assert Subscriber.objects.filter(id=person.id).exists()


def test_fresh_links_are_limited_per_hour(client, person):
    path, _, csrf = _page(client, person)
    for _ in range(conf.PRIVACY_LINK_MAILS_PER_HOUR + 3):
        assert client.post(path + "privacy/", {"csrfmiddlewaretoken": csrf,
                                               "action": "erase"}).status_code == 200
    assert TransactionalEmail.objects.filter(purpose="privacy").count() == \
        conf.PRIVACY_LINK_MAILS_PER_HOUR
    assert client.post(path + "privacy/", {"csrfmiddlewaretoken": csrf,
                                           "action": "delete-all"}).status_code == 400


def test_export_needs_post_with_csrf(client, person):
    link = _fresh_link(client, person, "export")
    assert client.post(link).status_code == 403


def test_erase_removes_personal_data_but_keeps_the_suppression(client, person, mailing_list):
    pref_path = f"/p/{tokens.preferences_token(person.id)}/"
    link = _fresh_link(client, person, "erase")
    confirm_page = client.get(link)
    assert confirm_page.status_code == 200 and Subscriber.objects.exists()  # GET erases nothing
    response = client.post(link, {"csrfmiddlewaretoken": str(confirm_page.context["csrf_token"]),
                                  "confirm": "yes"})
    assert response.status_code == 200
    assert not Subscriber.objects.exists() and not Subscription.objects.exists()
    entry = Suppression.objects.get()
    assert entry.reason == "erased" and "ann" not in entry.address  # a hash only
    records = ConsentRecord.objects.all()
    assert {r.event for r in records} == {"signup", "erase"}
    for record in records:  # proof kept, person gone
        assert (record.address, record.ip, record.user_agent) == ("", None, "")
        assert record.address_sha256 == ConsentRecord.hash_address("ann@example.org")
    assert client.get(pref_path).status_code == 404  # the links now lead nowhere
    assert client.get(link).status_code == 404
    # a new signup or import cannot silently bring the address back
    subscription_create(mailing_list=mailing_list, email="Ann@Example.org")
    assert not Subscriber.objects.exists() and is_suppressed("ann@example.org")
