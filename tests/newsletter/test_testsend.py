# ruff: noqa: F811 - the fixtures imported from test_campaigns are parameters here
"""Test sends as a chosen subscriber, through a real SMTP sink, with links that never act."""

from __future__ import annotations

import re

import pytest
from django.core import signing

from config import keys
from newsletter import tokens, tracking, tracking_drain
from newsletter.campaigns import campaign_test_send
from newsletter.models import Subscription, TrackedLink, TrackingCount, TrackingEvent
from sending.models import TransactionalEmail
from sending.sink import sink_messages
from sending.transactional import transactional_email_deliver
from tests.newsletter.test_campaigns import (  # noqa: F401 - fixtures
    audience,
    layout,
    make_campaign,
    no_mx_lookups,
)
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
BODY = ("# Hi {{ subscriber.name|default:\"reader\" }}\n\n"
        "[Spring](https://shop.example/spring?a=1&b=2), "
        "[prefs]({{ preferences_url }}).")


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = "http://testserver"
    tracking.link_cache_clear()
    with tracking._buffer.lock:
        tracking._buffer.lines.clear()


def sent_mail(smtp_sink):
    """Deliver the recorded test mails to the sink; the one message there, parsed."""
    for mail in TransactionalEmail.objects.all():
        transactional_email_deliver(mail.id)
    (message,) = sink_messages(smtp_sink.directory)
    html = next(p for p in message.message.walk() if p.get_content_type() == "text/html")
    text = next(p for p in message.message.walk() if p.get_content_type() == "text/plain")
    return message, html.get_content(), text.get_content()


def links(text: str, prefix: str) -> list[str]:
    """The paths of our links in ``text`` that start with ``prefix``."""
    paths = [u.removeprefix("http://testserver")
             for u in re.findall(r'http://testserver/[^\s"<>)]+', text)]
    return [p for p in paths if p.startswith(prefix)]


def test_a_test_send_is_the_chosen_subscribers_mail_and_its_links_never_act(
        client, mailing_list, layout, audience, smtp_sink, redis_client):
    campaign = make_campaign(mailing_list, layout, body=BODY, track_clicks=True,
                             track_opens=True)
    ann = audience["ann"]
    assert campaign_test_send(campaign, ["qa@shop.example"], ann.id) == 1
    message, html, text = sent_mail(smtp_sink)
    assert message.subject == "[TEST] Hello Ann" and message.rcpt_to == "qa@shop.example"
    assert "Hi Ann" in html and "Hi Ann" in text
    # No link of the real subscriber's: no /u/, /p/, /c/, /o/, no mailto unsubscribe.
    assert not links(html + text, "/u/") and not links(html + text, "/p/")
    assert not links(html, "/c/") and not links(html, "/o/")
    assert "unsubscribe+" not in message.message.as_string()
    unsubscribe = links(text, "/t/")
    assert unsubscribe, text

    page = client.get(links(message.message["List-Unsubscribe"], "/t/")[0])
    assert page.status_code == 200 and b"This was a test mail: nothing changed" in page.content
    for path in links(html, "/t/") + links(text, "/t/"):
        if "/t/c/" in path or "/t/o/" in path:
            continue
        for method in (client.get, client.post):
            response = method(path, {"List-Unsubscribe": "One-Click"}) \
                if method is client.post else method(path)
            assert response.status_code == 200, path
            assert b"This was a test mail: nothing changed" in response.content
    ann.refresh_from_db()
    assert ann.status == "confirmed"
    assert Subscription.objects.filter(status="unsubscribed").count() == 1  # Una, as before

    (click,) = {p for p in links(html, "/t/c/")}
    response = client.get(click)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/spring?a=1&b=2"
    (pixel,) = links(html, "/t/o/")
    assert client.get(pixel)["Content-Type"] == "image/gif"
    tracking.hits_flush()
    assert redis_client.llen(tracking.HITS_KEY) == 0
    tracking_drain.tracking_drain()
    assert not TrackingCount.objects.exists() and not TrackingEvent.objects.exists()
    assert not TrackedLink.objects.exists()  # a test leaves no links behind for the start


def test_a_test_send_without_a_subscriber_is_the_sample_reader(
        mailing_list, layout, audience, smtp_sink):
    campaign = make_campaign(mailing_list, layout, body=BODY)
    campaign_test_send(campaign, ["qa@shop.example"])
    message, html, _ = sent_mail(smtp_sink)
    assert message.subject == "[TEST] Hello Sample Reader"
    assert "https://shop.example/spring?a=1&amp;b=2" in html  # untracked: the link itself


def _test_token(**payload) -> str:
    return tokens.test_link_token(payload)


@pytest.mark.parametrize("change", ["forged", "altered", "links_key", "unsubscribe_token",
                                    "not_https", "garbage"])
def test_a_forged_or_altered_test_token_does_nothing(client, audience, redis_client, change):
    good = _test_token(k="click", u="https://shop.example/")
    value, _, signature = good.rpartition(":")
    bad = {
        "forged": signing.dumps({"k": "click", "u": "https://evil.example/"},
                                key="not-our-key", salt="newsletter.test-mail"),
        "altered": value + ":" + signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB"),
        # Signed for another purpose (the links key): not a test link.
        "links_key": signing.dumps({"k": "click", "u": "https://evil.example/"},
                                   key=keys.current(keys.LINKS).hex(),
                                   salt="newsletter.test-mail"),
        "unsubscribe_token": tokens.unsubscribe_token(audience["ann"].id),
        "not_https": _test_token(k="click", u="javascript:alert(1)"),
        "garbage": "https:%2F%2Fevil.example",
    }[change]
    response = client.get(f"/t/c/{bad}/")
    assert response.status_code == 404 and "Location" not in response
    assert client.get(f"/t/{bad}/").status_code == 404
    assert client.get(f"/t/o/{bad}/").status_code == 404
    # And a test token is nobody's unsubscribe token.
    assert client.get(f"/u/{good}/").status_code in (400, 404)
    assert client.post(f"/u/{good}/one-click/",
                       {"List-Unsubscribe": "One-Click"}).status_code == 400
    assert not Subscription.objects.filter(id=audience["ann"].id,
                                           status="unsubscribed").exists()
    tracking.hits_flush()
    assert redis_client.llen(tracking.HITS_KEY) == 0


def test_a_test_link_still_works_after_a_key_rotation(client, settings):
    token = _test_token(k="unsubscribe")
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    assert client.get(f"/t/{token}/").status_code == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(f"/t/{token}/").status_code == 404


def test_the_editor_chooses_whom_a_test_is_personalised_as(mailing_list, layout, audience,
                                                          sending_env):
    from django.contrib.admin.models import LogEntry

    from tests.newsletter.test_campaign_admin import Browser, _user

    editor = Browser(_user("edna"))
    campaign = make_campaign(mailing_list, layout, body=BODY)
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert 'id="test-as"' in page and "Bob &lt;bob@example.net&gt;" in page
    url = f"/admin/newsletter/campaign/{campaign.pk}/action/"
    response = editor.post(url, {"action": "test", "addresses": "qa@shop.example",
                                 "preview_as": "", "test_as_email": "BOB@example.net"},
                           follow=True)
    assert "personalised as Bob &lt;bob@example.net&gt;" in response.content.decode()
    assert TransactionalEmail.objects.get().subject == "[TEST] Hello Bob"
    assert LogEntry.objects.filter(change_message__contains="personalised as Bob").exists()
    response = editor.post(url, {"action": "test", "addresses": "qa@shop.example",
                                 "test_as_email": "nobody@example.org"}, follow=True)
    assert "No subscriber with the address" in response.content.decode()
    assert TransactionalEmail.objects.count() == 1


def test_the_test_page_speaks_german_too(client):
    token = _test_token(k="unsubscribe")
    page = client.get(f"/t/{token}/", HTTP_ACCEPT_LANGUAGE="de")
    assert "Das war eine Test-E-Mail: Nichts wurde geändert" in page.content.decode()
