"""Preferences, export and erasure: what a person does about their own data.

The preference link from every mail changes the name and the lists the person
was on; exporting and erasing need a fresh link mailed on request
(``privacy_link_send``). Erasure reaches every table holding the address
(``sending.privacy``, ``deliverability.privacy``) and keeps it suppressed as a
hash only.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from deliverability.suppression import is_suppressed
from newsletter import conf, confirm_budget, links, ratelimit, tokens
from newsletter.import_files import import_files_erase
from newsletter.models import ConsentRecord, MailingList, Subscriber, Subscription
from newsletter.services.consent import Client, consent_record_add, consent_text_current
from newsletter.services.subscriptions import subscription_unsubscribe
from newsletter.validation import name_clean
from sending.transactional import transactional_email_send

logger = logging.getLogger(__name__)

Event = ConsentRecord.Event
Status = Subscription.Status

HOUR = 3600
NOBODY = Client()  # the system itself (admin actions pass the operator)


def _plain(value: str) -> str:
    return " ".join(str(value).split())


def lists_for_preferences(subscriber: Subscriber) -> list[tuple[MailingList, Subscription]]:
    """The lists this person was on (confirmed once, perhaps unsubscribed since).

    Only these can be ticked on the preference page: a link from a mail proves
    nothing about consent to a list the person never confirmed (a forwarded mail
    carries the link), so other lists go through their signup page and its
    double opt-in.
    """
    subs = (subscriber.subscriptions.select_related("mailing_list")
            .filter(Q(status=Status.CONFIRMED) | Q(confirmed_at__isnull=False))
            .order_by("mailing_list__name", "id"))
    return [(s.mailing_list, s) for s in subs]


def lists_to_sign_up(subscriber: Subscriber) -> list[MailingList]:
    """Public lists the person is not on: offered as links to their signup pages."""
    on = {ml.id for ml, _sub in lists_for_preferences(subscriber)}
    return [ml for ml in MailingList.objects.filter(public=True).order_by("name")
            if ml.id not in on]


def subscriber_preferences_update(*, subscriber_id: int, name: str, list_ids: set[int],
                                  client: Client) -> dict[str, int]:
    """Save the preference page: the name, and which of the person's lists to be on.

    Ticking a list the person was on re-subscribes at once (recorded as
    re-subscribe), except for suppressed addresses, which are never
    re-subscribed silently; ids of other lists are ignored.
    """
    name = name_clean(name)
    changes = {"subscribed": 0, "unsubscribed": 0}
    with transaction.atomic():
        subscriber = Subscriber.objects.select_for_update().get(id=subscriber_id)
        if subscriber.name != name:
            subscriber.name = name
            subscriber.save(update_fields=["name", "updated_at"])
        suppressed = is_suppressed(subscriber.email)
        for mailing_list, subscription in lists_for_preferences(subscriber):
            wanted = mailing_list.id in list_ids
            on = subscription.status == Status.CONFIRMED
            if on and not wanted:
                subscription_unsubscribe(subscription_id=subscription.id, client=client)
                changes["unsubscribed"] += 1
            elif wanted and not on and not suppressed:
                subscription.status = Status.CONFIRMED
                subscription.confirmed_at = timezone.now()
                subscription.unsubscribed_at = None
                subscription.save()
                consent_record_add(event=Event.RESUBSCRIBE, source=client.source,
                                   subscription=subscription, address=subscriber.email,
                                   ip=client.ip, user_agent=client.user_agent,
                                   consent_text=consent_text_current(mailing_list))
                changes["subscribed"] += 1
    return changes


def privacy_link_send(*, subscriber_id: int, action: str) -> bool:
    """Mail the subscriber a fresh, short-lived link to export or erase their data.

    The preference link alone is not enough for these (it sits in every mail
    for months and travels with forwarded ones): this proves the person reads
    the mailbox now. At most PRIVACY_LINK_MAILS_PER_HOUR a subscriber; False
    when over it (the page says the same either way).
    """
    subscriber = Subscriber.objects.filter(id=subscriber_id).first()
    if subscriber is None or action not in tokens.PRIVACY_ACTIONS:
        return False
    if ratelimit.hit([(ratelimit.key_for("privacy-mail", str(subscriber.id)),
                       conf.PRIVACY_LINK_MAILS_PER_HOUR, HOUR)]):
        return False
    context = {"action": action, "url": links.privacy_url(subscriber.id, action),
               "valid_minutes": conf.PRIVACY_LINK_MAX_AGE_MINUTES,
               "site_url": settings.SITE_URL}
    transactional_email_send(
        to=subscriber.email,
        subject=_plain(render_to_string("newsletter/email/privacy_subject.txt", context)),
        body_text=render_to_string("newsletter/email/privacy.txt", context),
        purpose="privacy")
    logger.info("newsletter.privacy_link.sent", extra={"subscriber_id": subscriber.id,
                                                       "action": action})
    return True


def consent_records_of(subscriber: Subscriber) -> Q:
    """The consent records about this person: through their subscriptions, or orphaned
    (subscription purged or deleted) records of their address."""
    return (Q(subscription__in=Subscription.objects.filter(subscriber=subscriber))
            | Q(subscription=None,
                address_sha256=ConsentRecord.hash_address(subscriber.email)))


def subscriber_export_data(*, subscriber_id: int) -> dict:
    """Everything we hold about a subscriber, as plain JSON-able data."""
    subscriber = Subscriber.objects.get(id=subscriber_id)
    subs = subscriber.subscriptions.select_related("mailing_list").order_by("id")
    records = (ConsentRecord.objects.filter(consent_records_of(subscriber))
               .select_related("consent_text").order_by("created_at", "id"))

    def when(value):
        return value.isoformat() if value else None

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "attributes": subscriber.attributes,
        "created_at": when(subscriber.created_at),
        "subscriptions": [
            {"list": s.mailing_list.name, "list_slug": s.mailing_list.slug, "status": s.status,
             "created_at": when(s.created_at), "confirmed_at": when(s.confirmed_at),
             "unsubscribed_at": when(s.unsubscribed_at)} for s in subs
        ],
        "consent_records": [
            {"event": r.event, "source": r.source, "at": when(r.created_at),
             "list_slug": r.list_slug, "ip": r.ip, "user_agent": r.user_agent,
             "consent_text": r.consent_text.text if r.consent_text else None,
             "consent_text_version": r.consent_text.version if r.consent_text else None}
            for r in records
        ],
        **_records_elsewhere_export(subscriber),
    }


def _records_elsewhere_export(subscriber: Subscriber) -> dict:
    """What sending and deliverability hold about the address (mails, SMTP answers, bounces)."""
    from deliverability.privacy import bounce_records_export
    from sending.privacy import sending_records_export

    subscription_ids = list(subscriber.subscriptions.values_list("id", flat=True))
    sending = sending_records_export(address=subscriber.email,
                                     subscription_ids=subscription_ids)
    bounces = bounce_records_export(address=subscriber.email,
                                    delivery_ids=[d["id"] for d in sending["deliveries"]])
    return {**sending, **bounces}


def subscriber_erase(*, subscriber_id: int, client: Client = NOBODY) -> bool:
    """Erase a subscriber's personal data everywhere, keeping the address suppressed.

    Subscriptions and the subscriber row go; consent records stay as proof but
    lose address, IP and user agent (the address' SHA-256 remains). Deliveries
    are pseudonymised and SMTP replies, bounce events and raw bounces lose the
    address; transactional mail to it is deleted (``sending.privacy``,
    ``deliverability.privacy``). The suppression is kept as a hash only, with
    its reason if there was one ("erased" else), so no later import or signup
    silently re-adds the person, and a bounced or complaining address stays so.
    Stored import files and reports lose the lines naming the address
    (``newsletter.import_files``).
    """
    from deliverability.privacy import bounce_records_erase
    from sending.privacy import sending_records_erase

    subscriber = Subscriber.objects.filter(id=subscriber_id).first()
    if subscriber is None:
        return False
    address = subscriber.email
    digest = ConsentRecord.hash_address(address)
    subscription_ids = list(subscriber.subscriptions.values_list("id", flat=True))
    with transaction.atomic():
        for subscription in subscriber.subscriptions.select_related("mailing_list"):
            consent_record_add(event=Event.ERASE, source=client.source,
                               subscription=subscription, address="", address_sha256=digest)
        ConsentRecord.objects.filter(consent_records_of(subscriber)).update(
            address="", ip=None, user_agent="")
        delivery_ids = sending_records_erase(address=address, subscription_ids=subscription_ids)
        bounce_records_erase(address=address, delivery_ids=delivery_ids,
                             suppress_reason="erased", source="newsletter.erase")
        _admin_log_erase(subscriber, subscription_ids, address)
        subscriber.delete()
    for subscription_id in subscription_ids:
        confirm_budget.confirmation_forget(subscription_id)
    import_files_erase(address)  # files, after the rows: a crash here leaves only lines
    logger.info("newsletter.subscriber.erased", extra={"subscriber_id": subscriber_id})
    return True


def _admin_log_erase(subscriber: Subscriber, subscription_ids: list[int], address: str) -> None:
    """The admin's history names the subscriber by address (its ``__str__``): forget it."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from config.redact import ERASED, without_address

    objects = Q(content_type=ContentType.objects.get_for_model(Subscriber),
                object_id=str(subscriber.id))
    if subscription_ids:
        objects |= Q(content_type=ContentType.objects.get_for_model(Subscription),
                     object_id__in=[str(i) for i in subscription_ids])
    for entry in LogEntry.objects.filter(objects):
        entry.object_repr = ERASED
        entry.change_message = without_address(entry.change_message, address)
        entry.save(update_fields=["object_repr", "change_message"])
