"""Transactional send through the API: a real worker, a real SMTP sink."""

from __future__ import annotations

import pytest
from django.test import Client

from api.models import TransactionalTemplate
from newsletter.models import ConsentRecord
from sending.models import TransactionalEmail
from sending.sink import sink_messages
from tests.helpers import wait_until
from tests.newsletter.helpers import link_path


@pytest.mark.django_db(transaction=True)
def test_same_idempotency_key_twice_sends_one_mail(api, smtp_sink, celery_worker_factory):
    celery_worker_factory("transactional", name="tx")
    client = api(scopes=["transactional"])
    body = {"to": "buyer@example.org", "subject": "Your receipt {{ subscriber.order }}",
            "text": "Order {{ subscriber.order }}: {{ subscriber.total }}\n",
            "data": {"order": "A-17", "total": "12.50 CHF"}}
    first = client.post("/api/v1/tx/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-A-17")
    second = client.post("/api/v1/tx/", body, format="json", HTTP_IDEMPOTENCY_KEY="order-A-17")
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    stored = wait_until(lambda: sink_messages(smtp_sink.directory), timeout=20)
    state = wait_until(lambda: client.get(f"/api/v1/tx/{first.json()['id']}/").json()
                       if TransactionalEmail.objects.get().state == "sent" else None, timeout=20)
    assert len(sink_messages(smtp_sink.directory)) == 1
    assert TransactionalEmail.objects.count() == 1
    message = stored[0]
    assert message.subject == "Your receipt A-17" and "Order A-17: 12.50 CHF" in message.text
    assert state["state"] == "sent" and state["message_id"] == message.message["Message-ID"]
    # A third post after the send still sends nothing.
    assert client.post("/api/v1/tx/", body, format="json",
                       HTTP_IDEMPOTENCY_KEY="order-A-17").json()["state"] == "sent"
    assert len(sink_messages(smtp_sink.directory)) == 1


@pytest.mark.django_db
def test_same_key_with_another_body_is_refused(api):
    client = api(scopes=["transactional"])
    body = {"to": "a@example.org", "subject": "s", "text": "t"}
    assert client.post("/api/v1/tx/", body, format="json",
                       HTTP_IDEMPOTENCY_KEY="k1").status_code == 202
    other = client.post("/api/v1/tx/", {**body, "text": "changed"}, format="json",
                        HTTP_IDEMPOTENCY_KEY="k1")
    assert other.status_code == 422
    assert other["Content-Type"] == "application/problem+json"
    assert TransactionalEmail.objects.count() == 1
    # Keys belong to their user: another user's same key is a new mail.
    assert api(scopes=["transactional"]).post("/api/v1/tx/", body, format="json",
                                              HTTP_IDEMPOTENCY_KEY="k1").status_code == 202
    # Without a key, every post is a mail.
    client.post("/api/v1/tx/", body, format="json")
    assert TransactionalEmail.objects.count() == 3


@pytest.mark.django_db
def test_stored_template_escapes_data_in_html(api):
    TransactionalTemplate.objects.create(
        slug="welcome", subject="Hi {{ subscriber.name }}", body_text="Hello {{ subscriber.name }}",
        body_html="<p>Hello {{ subscriber.name }}</p>", from_email="shop@shop.example")
    response = api(scopes=["transactional"]).post("/api/v1/tx/", {
        "to": "a@example.org", "template": "welcome", "data": {"name": "<b>Bo</b>"}},
        format="json")
    assert response.status_code == 202
    mail = TransactionalEmail.objects.get()
    assert mail.body_html == "<p>Hello &lt;b&gt;Bo&lt;/b&gt;</p>"
    assert mail.body_text == "Hello <b>Bo</b>" and mail.from_email == "shop@shop.example"
    assert mail.purpose == "api"


@pytest.mark.django_db
@pytest.mark.parametrize("body", [
    {"to": "a@example.org"},
    {"to": "a@example.org", "template": "missing"},
    {"to": "a@example.org", "template": "x", "subject": "s"},
    {"to": "a@example.org", "subject": "s", "text": "{{ secret }}"},
    {"to": "bad address", "subject": "s", "text": "t"},
    {"to": "a@example.org\r\nBcc: x@example.org", "subject": "s", "text": "t"},
])
def test_bad_tx_requests_send_nothing(api, body):
    response = api(scopes=["transactional"]).post("/api/v1/tx/", body, format="json")
    assert response.status_code == 400, response.json()
    assert not TransactionalEmail.objects.exists()


@pytest.mark.django_db
def test_line_breaks_in_the_subject_never_make_a_header(api):
    api(scopes=["transactional"]).post("/api/v1/tx/", {
        "to": "a@example.org", "subject": "Hi {{ subscriber.n }}\r\nBcc: x@example.org",
        "text": "t", "data": {"n": "Bo\r\nCc: y@example.org"}}, format="json")
    assert TransactionalEmail.objects.get().subject == "Hi Bo Cc: y@example.org Bcc: x@example.org"


@pytest.mark.django_db
def test_tx_state_shows_only_api_mail(api):
    from sending.transactional import transactional_email_send

    confirmation = transactional_email_send(to="a@example.org", subject="Confirm",
                                            body_text="secret link", purpose="confirmation")
    client = api(scopes=["read"])
    assert client.get(f"/api/v1/tx/{confirmation.id}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_api_signup_confirmation_mail_confirm(api, mailing_list, smtp_sink,
                                              celery_worker_factory, monkeypatch):
    """As deployed: the request queues the signup, the worker stores it and mails."""
    from newsletter import conf

    monkeypatch.setattr(conf, "SIGNUP_ASYNC", True)
    celery_worker_factory("transactional", name="tx")
    client = api()
    response = client.post("/api/v1/subscriptions/", {
        "list": "shop-news", "email": "ann@example.org", "ip": "198.51.100.7",
        "user_agent": "Shop/1"}, format="json")
    assert response.status_code == 202
    assert response.json() == {"outcome": "queued", "subscription": None}
    stored = wait_until(lambda: sink_messages(smtp_sink.directory), timeout=20)
    assert stored[0].rcpt_to == "ann@example.org"
    path = link_path(stored[0].text, "/confirm/")
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(path)
    done = browser.post(path, {"csrfmiddlewaretoken": str(page.context["csrf_token"])})
    assert done.context["outcome"] == "confirmed"
    found = client.get("/api/v1/subscriptions/", {"email": "ann@example.org"}).json()
    assert [row["status"] for row in found["results"]] == ["confirmed"]
    record = ConsentRecord.objects.get(event="signup")
    assert (record.source, record.ip, record.user_agent) == ("api", "198.51.100.7", "Shop/1")
