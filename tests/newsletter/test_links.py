"""Signed links: forged, altered and expired tokens; one-click unsubscribe; contexts."""

from __future__ import annotations

import time

import pytest
from django.core import signing
from django.test import Client

from newsletter import conf, links, tokens
from newsletter.models import ConsentRecord, Subscriber, Subscription
from sending.recipients import recipient_contexts

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscription(mailing_list):
    subscriber = Subscriber.objects.create(email="ann@example.org", name="Ann",
                                           attributes={"plan": "pro"})
    return Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                       status="pending")


def _alter(token: str) -> str:
    """Change the signed id but keep the signature."""
    value, _, rest = token.partition(":")
    return f"{int(value) + 1}:{rest}"


def _bad_tokens(good: str, salt: str) -> dict[str, str]:
    other = tokens.confirm_token if salt.endswith("preferences") else tokens.preferences_token
    return {
        "forged": signing.Signer(key="not-our-key", salt=salt).sign("1"),
        "altered": _alter(good),
        "truncated": good[:-3],
        "other kind": other(1),
        "garbage": "%00%0d%0a<script>",
    }


def _state(subscription):
    subscription.refresh_from_db()
    return subscription.status, ConsentRecord.objects.count()


@pytest.mark.parametrize("kind", ["forged", "altered", "truncated", "other kind", "garbage"])
def test_bad_confirm_token_shows_clear_page_and_changes_nothing(client, subscription, kind):
    token = _bad_tokens(tokens.confirm_token(subscription.id), "newsletter.confirm")[kind]
    before = _state(subscription)
    page = client.get(f"/confirm/{token}/")
    assert page.status_code in (400, 404)
    if page.status_code == 400:
        assert b"This link is not valid" in page.content
    post = Client().post(f"/confirm/{token}/")  # and no POST gets further
    assert post.status_code in (400, 403, 404)
    assert _state(subscription) == before


def test_expired_confirm_token_shows_clear_page_and_changes_nothing(
        client, subscription, monkeypatch):
    token = tokens.confirm_token(subscription.id)
    monkeypatch.setattr(time, "time", lambda: 1e10)  # far in the future
    page = client.get(f"/confirm/{token}/")
    assert page.status_code == 410
    assert b"This link has expired" in page.content
    assert _state(subscription) == ("pending", 0)


@pytest.mark.parametrize("kind", ["forged", "altered", "truncated", "other kind", "garbage"])
def test_bad_unsubscribe_token_changes_nothing(client, subscription, kind):
    subscription.status = "confirmed"
    subscription.save()
    token = _bad_tokens(tokens.unsubscribe_token(subscription.id), "newsletter.unsubscribe")[kind]
    assert client.get(f"/u/{token}/").status_code in (400, 404)
    one_click = Client().post(f"/u/{token}/one-click/", {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code in (400, 404)
    assert _state(subscription) == ("confirmed", 0)


def test_bad_and_expired_preference_tokens_show_clear_page(client, subscription, monkeypatch):
    for token in _bad_tokens(tokens.preferences_token(subscription.subscriber_id),
                             "newsletter.preferences").values():
        assert client.get(f"/p/{token}/").status_code in (400, 404)
    good = tokens.preferences_token(subscription.subscriber_id)
    assert client.get(f"/p/{good}/").status_code == 200
    monkeypatch.setattr(time, "time",
                        lambda: 1e9 + conf.PREFERENCES_LINK_MAX_AGE_DAYS * 86400 * 400)
    assert client.get(f"/p/{good}/").status_code == 410


def test_one_click_post_works_without_cookies_or_csrf_token(subscription):
    subscription.status = "confirmed"
    subscription.save()
    mail_client = Client(enforce_csrf_checks=True)  # a mailbox provider: no cookies at all
    response = mail_client.post(
        links.one_click_url(subscription.id).removeprefix("http://127.0.0.1:8000"),
        "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded",
        REMOTE_ADDR="209.85.220.41", HTTP_USER_AGENT="Google-Mail-Unsubscribe")
    assert response.status_code == 200
    assert not response.cookies
    subscription.refresh_from_db()
    assert subscription.status == "unsubscribed" and subscription.unsubscribed_at
    record = ConsentRecord.objects.get()
    assert (record.event, record.source, record.ip) == ("unsubscribe", "one_click",
                                                        "209.85.220.41")
    # A repeated POST is harmless and records nothing new.
    again = mail_client.post(f"/u/{tokens.unsubscribe_token(subscription.id)}/one-click/",
                             {"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and ConsentRecord.objects.count() == 1


def test_one_click_accepts_multipart_body_and_refuses_get_or_wrong_body(subscription):
    path = f"/u/{tokens.unsubscribe_token(subscription.id)}/one-click/"
    assert Client().get(path).status_code == 405
    assert Client().post(path, {"List-Unsubscribe": "Yes"}).status_code == 400
    assert Subscription.objects.get().status == "pending"
    assert Client().post(path, {"List-Unsubscribe": "One-Click"}).status_code == 200  # multipart
    assert Subscription.objects.get().status == "unsubscribed"


def test_unsubscribe_page_get_shows_button_and_post_unsubscribes(client, subscription):
    subscription.status = "confirmed"
    subscription.save()
    path = f"/u/{tokens.unsubscribe_token(subscription.id)}/"
    page = client.get(path)
    assert page.status_code == 200 and b"<button" in page.content
    assert Subscription.objects.get().status == "confirmed"
    done = client.post(path, {"csrfmiddlewaretoken": str(page.context["csrf_token"])})
    assert done.status_code == 200 and b"You are unsubscribed" in done.content
    assert Subscription.objects.get().status == "unsubscribed"
    assert ConsentRecord.objects.get().source == "email_link"


def test_confirm_link_after_unsubscribe_does_not_resubscribe(client, subscription):
    Subscription.objects.filter(id=subscription.id).update(status="unsubscribed")
    path = f"/confirm/{tokens.confirm_token(subscription.id)}/"
    page = client.get(path)
    response = client.post(path, {"csrfmiddlewaretoken": str(page.context["csrf_token"])})
    assert response.status_code == 409
    assert Subscription.objects.get().status == "unsubscribed"


def test_recipient_contexts_give_the_links_the_sending_engine_needs(subscription, settings):
    settings.SITE_URL = "https://news.example.org"
    other_id = subscription.id + 1000
    contexts = recipient_contexts([subscription.id, other_id])
    assert set(contexts) == {subscription.id}
    context = contexts[subscription.id]
    assert context["email"] == "ann@example.org"
    assert context["subscriber"] == {"email": "ann@example.org", "name": "Ann",
                                     "attributes": {"plan": "pro"}}
    assert context["list_id"] == "shop-news.news.example.org"
    assert context["one_click_url"].startswith("https://news.example.org/u/")
    assert context["one_click_url"].endswith("/one-click/")
    assert context["unsubscribe_url"].startswith("https://news.example.org/u/")
    assert context["preferences_url"].startswith("https://news.example.org/p/")
    # the one-click URL unsubscribes exactly this subscription
    path = context["one_click_url"].removeprefix("https://news.example.org")
    Client().post(path, {"List-Unsubscribe": "One-Click"})
    assert Subscription.objects.get().status == "unsubscribed"


def test_batched_contexts_give_the_same_links_as_the_single_helpers(subscription, settings):
    from newsletter.links import one_click_url, preferences_url, unsubscribe_url

    settings.SITE_URL = "https://news.example.org"
    context = recipient_contexts([subscription.id])[subscription.id]
    assert context["unsubscribe_url"] == unsubscribe_url(subscription.id)
    assert context["one_click_url"] == one_click_url(subscription.id)
    # preference tokens carry a timestamp: compare what they decode to
    from newsletter.tokens import preferences_token_read

    def token(url):
        return url.rstrip("/").rpartition("/")[2]

    assert preferences_token_read(token(context["preferences_url"])) == \
        preferences_token_read(token(preferences_url(subscription.subscriber_id))) == \
        subscription.subscriber_id


def test_tokens_are_djangos_signatures_and_follow_the_secret_key(settings, monkeypatch):
    """The signers keep their derived key for speed; the bytes stay Django's own, made
    with the links key derived from the secret key (config.keys)."""
    from config import keys

    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.0)
    key = keys.current(keys.LINKS).hex()
    assert tokens.unsubscribe_token(42) == signing.Signer(
        key=key, salt="newsletter.unsubscribe").sign("42")
    assert tokens.preferences_token(7) == signing.TimestampSigner(
        key=key, salt="newsletter.preferences").sign("7")
    assert tokens.confirm_token(9) == signing.TimestampSigner(
        key=key, salt="newsletter.confirm").sign("9")
    before = tokens.unsubscribe_token(42)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789"
    assert tokens.unsubscribe_token(42) != before
    assert tokens.unsubscribe_token_read(tokens.unsubscribe_token(42)) == 42
