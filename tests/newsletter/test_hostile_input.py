"""Hostile input in every field of the signup form: refused, or stored inertly."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter import conf
from newsletter.models import ConsentRecord, Subscriber, Subscription
from tests.newsletter.helpers import confirmation_mails

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def generous_limits(monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_IP", 10**6)
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_LIST", 10**6)


@pytest.mark.parametrize("email", [
    "ann@example.org\r\nBcc: victim@example.net",
    "ann@example.org\nSubject: spam",
    "ann@example.org%0d%0aBcc:x@y.z",
    "<script>@example.org",
    "a" * 250 + "@example.org",
    "ann@" + "x" * 10_000 + ".org",
    "ann @example.org",
    "ann@exa\u0000mple.org",
    "",
])
def test_hostile_address_is_refused(signup_post, email):
    response = signup_post(email=email)
    assert response.status_code == 400
    assert response.context["form"].errors["email"]
    assert not Subscriber.objects.exists() and not confirmation_mails().exists()


@pytest.mark.parametrize("name", [
    "Ann\r\nBcc: victim@example.net",
    "Ann\x00",
    "Ann\x1b[31m",
    "N" * 10_240,
])
def test_hostile_name_is_refused(signup_post, name):
    response = signup_post(name=name)
    assert response.status_code == 400
    assert response.context["form"].errors["name"]
    assert not Subscriber.objects.exists()


def test_html_in_name_is_stored_inertly_and_never_mailed(signup_post, client):
    from newsletter import tokens

    signup_post(name='<img src=x onerror=alert(1)>"><b>Boss</b>')
    subscriber = Subscriber.objects.get()
    assert subscriber.name == '<img src=x onerror=alert(1)>"><b>Boss</b>'
    mail = confirmation_mails().get()
    assert "onerror" not in mail.body_html and "Boss" not in mail.body_text
    page = client.get(f"/p/{tokens.preferences_token(subscriber.id)}/").content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_invalid_utf8_in_the_body_is_refused_or_stored_inertly(client, mailing_list):
    page = client.get("/s/shop-news/")
    csrf = str(page.context["csrf_token"]).encode()
    body = (b"csrfmiddlewaretoken=" + csrf + b"&consent=on&email=ann%40example.org"
            b"&name=An%FF%FEn&website=")
    response = client.post("/s/shop-news/", body, content_type="application/x-www-form-urlencoded",
                           REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 302
    assert Subscriber.objects.get().name == "An\ufffd\ufffdn"  # replaced, never raw bytes
    bad_address = body.replace(b"ann%40example.org", b"a%FFn%40example.org")
    response = client.post("/s/shop-news/", bad_address,
                           content_type="application/x-www-form-urlencoded",
                           REMOTE_ADDR="10.9.9.9")
    assert response.status_code == 400
    assert Subscriber.objects.count() == 1


def test_hostile_user_agent_and_forwarded_for_are_stored_inertly(signup_post, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_TRUSTED_PROXIES", 1)
    signup_post(meta={"HTTP_USER_AGENT": "x\r\n" * 5000,
                      "HTTP_X_FORWARDED_FOR": "not-an-ip, <script>"})
    record = ConsentRecord.objects.get()
    assert len(record.user_agent) <= 400 and "\n" not in record.user_agent
    assert record.ip == "198.51.100.7"  # not an address: the proxy's own is used
    signup_post(email="bo@example.org", meta={"HTTP_X_FORWARDED_FOR": "203.0.113.5"})
    assert ConsentRecord.objects.filter(ip="203.0.113.5").exists()


def test_oversized_consent_version_and_unknown_fields_are_ignored(signup_post):
    response = signup_post(consent_version="9" * 50, extra_field="x" * 10_000)
    assert response.status_code in (302, 400)
    assert Subscription.objects.count() <= 1


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.text(max_size=300), name=st.text(max_size=300))
def test_any_text_in_the_form_is_answered_without_a_server_error(signup_post, email, name):
    response = signup_post(email=email, name=name)
    assert response.status_code in (302, 400)
    for subscriber in Subscriber.objects.all():
        assert "\n" not in subscriber.name and "\r" not in subscriber.name
        assert "\n" not in subscriber.email and len(subscriber.email) <= 254
