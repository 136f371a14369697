"""Absolute links for mails, and the recipient contexts the sending engine asks for.

``recipient_contexts`` is registered with ``sending.recipients`` in
``NewsletterConfig.ready``; the sending engine puts ``one_click_url`` and
``unsubscribe_url`` into ``List-Unsubscribe`` / ``List-Unsubscribe-Post``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.urls import reverse

from newsletter import conf, tokens
from newsletter.models import MailingList, Subscription


def absolute(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def confirm_url(subscription_id: int) -> str:
    return absolute(reverse("newsletter:confirm", args=[tokens.confirm_token(subscription_id)]))


def confirm_urls(subscription_ids: list[int]) -> dict[int, str]:
    """``confirm_url`` for many subscriptions, the URL pattern resolved once."""
    at = _url_with_slot("newsletter:confirm")
    return {i: at.replace(_SLOT, tokens.confirm_token(i)) for i in subscription_ids}


def unsubscribe_url(subscription_id: int) -> str:
    return absolute(reverse("newsletter:unsubscribe",
                            args=[tokens.unsubscribe_token(subscription_id)]))


def one_click_url(subscription_id: int) -> str:
    return absolute(reverse("newsletter:one-click",
                            args=[tokens.unsubscribe_token(subscription_id)]))


def preferences_url(subscriber_id: int) -> str:
    return absolute(reverse("newsletter:preferences",
                            args=[tokens.preferences_token(subscriber_id)]))


def privacy_url(subscriber_id: int, action: str) -> str:
    """The fresh link for ``export`` or ``erase`` (see tokens.privacy_token)."""
    return absolute(reverse(f"newsletter:privacy-{action}",
                            args=[tokens.privacy_token(subscriber_id, action)]))


def signup_url(mailing_list: MailingList) -> str:
    return absolute(reverse("newsletter:signup", args=[mailing_list.slug]))


def list_id(mailing_list: MailingList) -> str:
    """The List-Id value (RFC 2919): ``slug.domain``."""
    domain = conf.LIST_ID_DOMAIN or urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"{mailing_list.slug}.{domain}"


_SLOT = "__token__"


def _url_with_slot(name: str) -> str:
    return absolute(reverse(name, args=[_SLOT]))


def recipient_contexts(subscription_ids: list[int]) -> dict[int, dict]:
    """{subscription id: render context} for the sending engine (see sending.recipients).

    Ids of missing subscriptions are absent. Unsubscribed or pending ones are
    included (the engine decides whom to send to); ``status`` says which.
    """
    contexts: dict[int, dict] = {}
    # The sending engine asks for thousands at a time: resolve each URL pattern once
    # and sign each token once (the unsubscribe token serves both of its links).
    unsubscribe_at = _url_with_slot("newsletter:unsubscribe")
    one_click_at = _url_with_slot("newsletter:one-click")
    preferences_at = _url_with_slot("newsletter:preferences")
    lists: dict[int, tuple[str, str]] = {}  # mailing list id -> (List-Id, name)
    mailto_domain = _mailto_domain()
    for start in range(0, len(subscription_ids), 1000):
        chunk = subscription_ids[start:start + 1000]
        # Plain tuples, not model instances: a third of the cost per row.
        rows = Subscription.objects.filter(id__in=chunk).values_list(
            "id", "status", "mailing_list_id", "subscriber_id", "subscriber__email",
            "subscriber__name", "subscriber__attributes")
        for sub_id, status, list_pk, subscriber_id, email, name, attributes in rows:
            if list_pk not in lists:
                mailing_list = MailingList.objects.get(id=list_pk)
                lists[list_pk] = (list_id(mailing_list), mailing_list.name)
            unsubscribe = tokens.unsubscribe_token(sub_id)
            preferences = tokens.preferences_token(subscriber_id)
            contexts[sub_id] = {
                "email": email,
                "subscriber": {"email": email, "name": name, "attributes": attributes},
                "unsubscribe_url": unsubscribe_at.replace(_SLOT, unsubscribe),
                "one_click_url": one_click_at.replace(_SLOT, unsubscribe),
                "preferences_url": preferences_at.replace(_SLOT, preferences),
                "list_id": lists[list_pk][0],
                "list_name": lists[list_pk][1],
                "status": status,
            }
            if mailto_domain:
                contexts[sub_id]["unsubscribe_mailto"] = unsubscribe_mailto(sub_id, mailto_domain)
    return contexts


def _mailto_domain() -> str:
    from sending import conf as sending_conf

    return sending_conf.get().unsubscribe_mailto_domain


def unsubscribe_mailto(subscription_id: int, domain: str) -> str:
    """RFC 2369 ``mailto:`` unsubscribe address; the bounce listener accepts it and the
    signed per-subscription token, never the From:, decides (deliverability.intake)."""
    return f"unsubscribe+{tokens.unsubscribe_mailto_token(subscription_id)}@{domain}"
