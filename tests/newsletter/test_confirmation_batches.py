"""Confirmations of a drained batch: rendered once per list and language, each its own link."""

from __future__ import annotations

import uuid

import pytest
from django.utils.html import escape

from newsletter import links, tokens
from newsletter.models import MailingList, Subscription
from newsletter.services.signup import signups_store
from tests.newsletter.helpers import LINK, confirmation_mails

pytestmark = pytest.mark.django_db


def _payload(address: str, mailing_list: MailingList, language: str) -> dict:
    return {"request_id": uuid.uuid4().hex, "list_id": mailing_list.id, "address": address,
            "name": "", "consent_text_id": None, "ip": "192.0.2.1", "user_agent": "UA",
            "source": "form", "at": "2026-01-02T03:04:05+00:00", "language": language}


def test_each_mail_has_its_own_link_list_and_language(mailing_list, monkeypatch, redis_client,
                                                      django_capture_on_commit_callbacks):
    from sending.tasks import transactional_deliver_batch

    tasks = []
    monkeypatch.setattr(transactional_deliver_batch, "apply_async",
                        lambda args, countdown=None: tasks.append(args[0]))
    other = MailingList.objects.create(name="Tom & Jerry's <Letters>", slug="letters",
                                       from_email="letters@shop.example", from_name="Letters",
                                       reply_to="editor@shop.example")
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = signups_store([
            _payload("a@example.org", mailing_list, "en"),
            _payload("b@example.org", mailing_list, "de"),
            _payload("c@example.org", other, "en"),
            _payload("d@example.org", mailing_list, "en"),
        ])
    assert +outcomes == {"requested": 4}
    mails = {mail.to: mail for mail in confirmation_mails()}
    assert tasks == [[mail.id for mail in confirmation_mails()]]  # one task for the batch
    prefix = links.confirm_url(1).rsplit("/confirm/", 1)[0] + "/confirm/"
    for address, mail in mails.items():
        sub = Subscription.objects.get(subscriber__email=address)
        (url,) = {u for u in LINK.findall(mail.body_text) if u.startswith(prefix)}
        assert tokens.confirm_token_read(url[len(prefix):].rstrip("/")) == sub.id  # its own
        assert f'href="{escape(url)}"' in mail.body_html
    assert mails["a@example.org"].subject == mails["d@example.org"].subject
    assert mails["b@example.org"].subject != mails["a@example.org"].subject  # German
    assert "Shop News" in mails["b@example.org"].subject
    letters = mails["c@example.org"]
    assert "Tom &amp; Jerry&#x27;s &lt;Letters&gt;" in letters.body_html  # escaped in HTML
    assert "Tom & Jerry's <Letters>" in letters.body_text
    assert letters.from_email == "Letters <letters@shop.example>"
    assert letters.headers == {"Reply-To": "editor@shop.example"}
    assert mails["a@example.org"].headers == {}
