"""Lists, subscribers, subscriptions and suppressions through the API."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import DELETION, LogEntry

from deliverability.models import Suppression
from deliverability.suppression import is_suppressed, suppress
from newsletter.models import ConsentRecord, ConsentText, MailingList, Subscriber, Subscription
from newsletter.services.consent import consent_text_current
from sending.models import TransactionalEmail

pytestmark = pytest.mark.django_db


def test_lists_are_read_only(api, mailing_list):
    client = api()
    body = client.get("/api/v1/lists/").json()
    assert [row["slug"] for row in body["results"]] == ["shop-news"]
    assert client.get(f"/api/v1/lists/{mailing_list.id}/").json()["double_opt_in"] is True
    assert client.post("/api/v1/lists/", {"name": "x"}, format="json").status_code == 405


def test_subscriber_create_read_update_search_delete(api):
    client = api()
    created = client.post("/api/v1/subscribers/", {
        "email": "Ann@EXAMPLE.org", "name": "Ann", "attributes": {"city": "Bern", "vip": True}},
        format="json")
    assert created.status_code == 201
    sid = created.json()["id"]
    assert created.json()["email"] == "ann@example.org"  # one normalisation everywhere
    same = client.post("/api/v1/subscribers/", {"email": "Ann@example.org"}, format="json")
    assert same.status_code == 200 and same.json()["id"] == sid
    assert client.get(f"/api/v1/subscribers/{sid}/").json()["attributes"] == {
        "city": "Bern", "vip": True}
    changed = client.patch(f"/api/v1/subscribers/{sid}/", {
        "attributes": {"city": None, "plan": "gold"}, "merge_attributes": True}, format="json")
    assert changed.status_code == 200
    assert changed.json()["attributes"] == {"vip": True, "plan": "gold"}
    assert client.patch(f"/api/v1/subscribers/{sid}/", {"name": "Ann B."},
                        format="json").json()["name"] == "Ann B."
    found = client.get("/api/v1/subscribers/", {"search": "ann b"}).json()["results"]
    assert [row["id"] for row in found] == [sid]
    assert client.get("/api/v1/subscribers/", {"email": "ANN@example.ORG"}).json()[
        "results"][0]["email"] == "ann@example.org"
    assert client.delete(f"/api/v1/subscribers/{sid}/").status_code == 204
    assert not Subscriber.objects.filter(id=sid).exists()
    assert is_suppressed("Ann@example.org")  # kept as a hash only
    assert not Suppression.objects.filter(address__icontains="ann@").exists()
    erased = LogEntry.objects.get(action_flag=DELETION)
    assert "Ann@example.org" not in erased.object_repr  # the log keeps no erased address


@pytest.mark.parametrize("attributes", [
    {"note": "a\x00b"}, {"note": "line\nbreak"}, {"nested": {"a": 1}}, {"": 1},
    {"n": 2**60}, {"x" * 65: 1}, {f"k{i}": i for i in range(101)},
])
def test_bad_attributes_are_refused_with_a_problem(api, attributes):
    client = api()
    response = client.post("/api/v1/subscribers/", {"email": "a@example.org",
                                                     "attributes": attributes}, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"].endswith("/validation")
    assert not Subscriber.objects.exists()


def test_invalid_address_names_the_field(api):
    response = api().post("/api/v1/subscribers/", {"email": "not an address"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()["errors"]


def test_cursor_pagination_walks_every_row_once(api):
    Subscriber.objects.bulk_create([Subscriber(email=f"s{i}@example.org") for i in range(7)])
    client = api()
    seen, url = [], "/api/v1/subscribers/?page_size=3"
    while url:
        page = client.get(url).json()
        seen += [row["email"] for row in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(f"s{i}@example.org" for i in range(7))
    assert client.get("/api/v1/subscribers/?cursor=garbage").status_code == 404


def test_api_signup_follows_double_opt_in_and_records_consent(api, mailing_list):
    client = api()
    text = consent_text_current(mailing_list)
    response = client.post("/api/v1/subscriptions/", {
        "list": "shop-news", "email": "ann@example.org", "name": "Ann",
        "ip": "198.51.100.7", "user_agent": "ShopCheckout/2.1",
        "consent_text_version": text.version}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["outcome"] == "requested"
    assert body["subscription"]["status"] == "pending"
    record = ConsentRecord.objects.get()
    assert (record.event, record.source) == ("signup", "api")
    assert record.ip == "198.51.100.7" and record.user_agent == "ShopCheckout/2.1"
    assert record.consent_text == text
    mail = TransactionalEmail.objects.get(purpose="confirmation")
    assert mail.to == "ann@example.org" and "/confirm/" in mail.body_text


def test_api_signup_to_single_opt_in_list_confirms(api):
    MailingList.objects.create(name="Tips", slug="tips", double_opt_in=False)
    response = api().post("/api/v1/subscriptions/", {"list": "tips",
                                                      "email": "bo@example.org"}, format="json")
    assert response.json()["outcome"] == "confirmed"
    assert Subscription.objects.get().status == "confirmed"
    assert not TransactionalEmail.objects.exists()


def test_api_signup_of_suppressed_address_does_nothing(api, mailing_list):
    suppress(address="bo@example.org", reason="hard_bounce")
    response = api().post("/api/v1/subscriptions/", {"list": "shop-news",
                                                      "email": "bo@example.org"}, format="json")
    assert response.status_code == 200
    assert response.json() == {"outcome": "suppressed", "subscription": None}
    assert not Subscription.objects.exists() and not TransactionalEmail.objects.exists()


def test_api_signup_refuses_unknown_list_and_version(api, mailing_list):
    client = api()
    assert client.post("/api/v1/subscriptions/", {"list": "nope", "email": "a@example.org"},
                       format="json").status_code == 400
    response = client.post("/api/v1/subscriptions/", {
        "list": "shop-news", "email": "a@example.org", "consent_text_version": 99},
        format="json")
    assert response.status_code == 400
    assert "consent_text_version" in response.json()["errors"]
    assert not ConsentText.objects.filter(version=99).exists()
    assert not Subscription.objects.exists()


def test_api_signup_rate_limit_per_stated_ip_answers_429(api, mailing_list, monkeypatch):
    from newsletter import conf

    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_IP", 2)
    client = api()
    codes = [client.post("/api/v1/subscriptions/", {
        "list": "shop-news", "email": f"p{i}@example.org", "ip": "203.0.113.5"},
        format="json").status_code for i in range(3)]
    assert codes == [201, 201, 429]


def test_unsubscribe_through_the_api(api, mailing_list):
    client = api()
    created = client.post("/api/v1/subscriptions/", {"list": "shop-news",
                                                     "email": "a@example.org"}, format="json")
    sid = created.json()["subscription"]["id"]
    response = client.post(f"/api/v1/subscriptions/{sid}/unsubscribe/",
                           {"ip": "192.0.2.1", "detail": "shop account closed"}, format="json")
    assert response.json()["unsubscribed"] is True
    assert response.json()["subscription"]["status"] == "unsubscribed"
    record = ConsentRecord.objects.get(event="unsubscribe")
    assert (record.source, record.ip, record.detail) == ("api", "192.0.2.1",
                                                          "shop account closed")
    again = client.post(f"/api/v1/subscriptions/{sid}/unsubscribe/", {}, format="json")
    assert again.json()["unsubscribed"] is False
    listed = client.get("/api/v1/subscriptions/", {"status": "unsubscribed"}).json()
    assert [row["id"] for row in listed["results"]] == [sid]


def test_suppressions_add_read_remove_with_reason(api):
    client = api()
    added = client.post("/api/v1/suppressions/", {"address": "x@EXAMPLE.org",
                                                  "detail": "asked by phone"}, format="json")
    assert added.status_code == 201
    entry = added.json()
    assert (entry["address"], entry["reason"]) == ("x@example.org", "manual")
    assert client.post("/api/v1/suppressions/", {"address": "x@example.org",
                                                 "reason": "complaint"},
                       format="json").json()["reason"] == "manual"  # first reason kept
    assert client.get("/api/v1/suppressions/", {"address": "x@example.org"}).json()[
        "results"][0]["id"] == entry["id"]
    assert client.delete(f"/api/v1/suppressions/{entry['id']}/").status_code == 400
    assert client.delete(f"/api/v1/suppressions/{entry['id']}/?reason=mistake").status_code \
        == 204
    assert not Suppression.objects.exists()
    log = LogEntry.objects.get(action_flag=DELETION)
    assert "mistake" in log.change_message


def test_unknown_api_path_is_a_problem(api):
    response = api().get("/api/v1/nothing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_a_body_over_the_upload_limit_is_a_413_problem(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = api().post("/api/v1/tx/", {"template": "x" * 20_000}, format="json")
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == "/api/v1/problems/too_large"
    assert "10000 bytes" in response.json()["detail"]
