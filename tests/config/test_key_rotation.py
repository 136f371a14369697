"""Derived keys per purpose and rotation with SECRET_KEY_FALLBACKS (README "Key rotation").

Rotating the secret key keeps unsubscribe links, confirm links and VERP return
paths already mailed working while the old key is listed as a fallback; new
ones use the new key only.
"""

from __future__ import annotations

import pytest
from django.core import signing
from django.test import Client

from config import keys
from deliverability import verp
from deliverability.intake import ingest
from deliverability.models import Suppression
from newsletter import tokens
from newsletter.models import MailingList, Subscriber, Subscription
from tests.deliverability.intake_support import BOUNCE_DOMAIN, bounce_for, make_delivery

OLD = "old-secret-key-for-rotation-tests-0123456789-abcdefghij"
NEW = "new-secret-key-for-rotation-tests-9876543210-zyxwvutsrq"


@pytest.fixture
def old_key(settings):
    settings.SECRET_KEY = OLD
    settings.SECRET_KEY_FALLBACKS = []
    return settings


def rotate(settings, *, keep_old: bool = True) -> None:
    settings.SECRET_KEY = NEW
    settings.SECRET_KEY_FALLBACKS = [OLD] if keep_old else []


def test_each_purpose_has_its_own_key_and_none_is_the_secret_key(old_key):
    links, return_paths = keys.current(keys.LINKS), keys.current(keys.VERP)
    assert links != return_paths
    assert OLD.encode() not in (links, return_paths)
    # Link tokens are no longer signatures with the secret key itself.
    assert tokens.unsubscribe_token(42) != signing.Signer(
        key=OLD, salt="newsletter.unsubscribe").sign("42")
    assert tokens.unsubscribe_token(42) == signing.Signer(
        key=links.hex(), salt="newsletter.unsubscribe").sign("42")


def test_link_tokens_survive_a_rotation_and_new_ones_use_the_new_key(old_key):
    unsubscribe, confirm, preferences = (tokens.unsubscribe_token(42), tokens.confirm_token(9),
                                         tokens.preferences_token(7))
    rotate(old_key)
    assert tokens.unsubscribe_token_read(unsubscribe) == 42
    assert tokens.confirm_token_read(confirm) == 9
    assert tokens.preferences_token_read(preferences) == 7
    fresh = tokens.unsubscribe_token(42)
    assert fresh != unsubscribe
    rotate(old_key, keep_old=False)  # the old key dropped: old links end, new ones work
    assert tokens.unsubscribe_token_read(fresh) == 42
    for read, old in ((tokens.unsubscribe_token_read, unsubscribe),
                      (tokens.confirm_token_read, confirm),
                      (tokens.preferences_token_read, preferences)):
        with pytest.raises(tokens.TokenInvalid):
            read(old)


def test_links_signed_before_derived_keys_existed_still_read(old_key):
    """Mail sent by the previous release carries tokens signed with the secret key itself."""
    legacy = signing.Signer(key=OLD, salt="newsletter.unsubscribe").sign("42")
    assert tokens.unsubscribe_token_read(legacy) == 42
    rotate(old_key)
    assert tokens.unsubscribe_token_read(legacy) == 42
    rotate(old_key, keep_old=False)
    with pytest.raises(tokens.TokenInvalid):
        tokens.unsubscribe_token_read(legacy)


@pytest.mark.django_db
def test_an_old_unsubscribe_link_works_through_the_page_after_rotation(old_key):
    mailing_list = MailingList.objects.create(name="News", slug="news")
    subscription = Subscription.objects.create(
        subscriber=Subscriber.objects.create(email="ann@example.org"),
        mailing_list=mailing_list, status=Subscription.Status.CONFIRMED)
    old_link = tokens.unsubscribe_token(subscription.id)
    rotate(old_key)
    answer = Client().post(f"/u/{old_link}/one-click/", {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200, answer.content
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED


def test_verp_addresses_survive_a_rotation_and_new_ones_use_the_new_key(old_key):
    old_address = verp.encode(123456, BOUNCE_DOMAIN)
    rotate(old_key)
    assert verp.decode(old_address) == 123456
    new_address = verp.encode(123456, BOUNCE_DOMAIN)
    assert new_address != old_address
    assert verp.decode(new_address, secret=NEW) == 123456
    assert verp.decode(old_address, secret=NEW) is None  # made with the old key, not the new
    rotate(old_key, keep_old=False)
    assert verp.decode(old_address) is None
    assert verp.decode(new_address) == 123456


@pytest.mark.django_db
def test_a_bounce_to_a_return_path_made_before_rotation_is_matched(old_key):
    delivery = make_delivery("nobody@example.org")
    raw = bounce_for("rfc3464_user_unknown", delivery)  # VERP made with the old key
    rotate(old_key)
    event = ingest(raw, source="pipe").events.get()
    assert event.delivery_id == delivery.id
    assert Suppression.objects.filter(address="nobody@example.org").exists()


def test_fallbacks_are_read_from_the_environment():
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    environment = {**os.environ, "DJANGO_SECRET_KEY": NEW,
                   "DJANGO_SECRET_KEY_FALLBACKS": f"{OLD}, another-old-key-0123456789"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings;"
         "print(settings.SECRET_KEY_FALLBACKS)"],
        cwd=ROOT, env={**environment, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr([OLD, "another-old-key-0123456789"])
