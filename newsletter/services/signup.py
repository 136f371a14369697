"""Signups: the form's checks and limits, the queue a worker drains, confirmation mails.

Every change of consent appends a ``ConsentRecord``. Confirmation mails go
through the transactional queue and pool (``sending.transactional``), never
contain anything the signer typed, and are limited per address in Redis.
Confirming and unsubscribing are in ``newsletter.services.subscriptions``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta
from email.utils import formataddr
from enum import StrEnum

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext as _

from config.database import insert_rows, update_rows
from config.redis import get_redis
from deliverability.suppression import is_suppressed, suppressed_among
from newsletter import conf, confirm_budget, links, mx, ratelimit
from newsletter.exceptions import InvalidAddress, SignupRateLimited
from newsletter.models import (
    ConsentRecord,
    ConsentText,
    MailingList,
    Subscriber,
    Subscription,
)
from newsletter.services.consent import (
    MAX_USER_AGENT,
    Client,
    consent_record_add,
    consent_text_current,
    consent_text_for,
    user_agent_clean,
)
from newsletter.services.consent import client_ip as consent_client_ip
from newsletter.validation import address_clean, name_clean
from sending.transactional import transactional_emails_send

logger = logging.getLogger(__name__)

Event = ConsentRecord.Event
Source = ConsentRecord.Source
Status = Subscription.Status

HOUR = 3600
DAY = 86400


class SignupOutcome(StrEnum):
    """What a signup did. The visitor sees the same page for all of them."""

    REQUESTED = "requested"  # pending, confirmation mail queued
    CONFIRMED = "confirmed"  # list without double opt-in: subscribed at once
    ALREADY_CONFIRMED = "already_confirmed"
    MAIL_LIMITED = "mail_limited"  # pending, but this address had enough mails today
    ADDRESS_LIMITED = "address_limited"  # too many signups for this address: nothing done
    SUPPRESSED = "suppressed"  # on the suppression list: nothing done, no mail
    HONEYPOT = "honeypot"  # a bot filled the hidden field: nothing done
    QUEUED = "queued"  # checked and queued for a worker (subscription_request)
    DUPLICATE = "duplicate"  # a queued signup delivered twice: nothing done again
    DROPPED = "dropped"  # a queued signup for a list deleted since: nothing done


def _plain(value: str) -> str:
    """Operator text for a header: no line breaks."""
    return " ".join(str(value).split())


# --- signup ------------------------------------------------------------------

_LIMIT_SCOPES = ("ip", "network", "list")


def _signup_limits(mailing_list: MailingList, ip: str | None) -> list[tuple[str, int, int]]:
    """Per client (IPv6: its /64), per network (/24, /48) and per list, in that order.

    The network's share keeps one attacker from using up the list's hourly
    budget for everyone; a refused request counts against none of them.
    """
    list_limit = conf.SIGNUP_RATE_PER_LIST
    limits = [(ratelimit.key_for("list", str(mailing_list.id)), list_limit, HOUR)]
    if ip:
        client, network = ratelimit.client_networks(ip)
        limits[:0] = [
            (ratelimit.key_for("ip", client), conf.SIGNUP_RATE_PER_IP, HOUR),
            (ratelimit.key_for("net", f"{mailing_list.id}:{network}"),
             min(conf.SIGNUP_RATE_PER_NETWORK, list_limit), HOUR)]
    return limits


def _refused_scope(limits: list, refused: int) -> str:
    return _LIMIT_SCOPES[refused - 1] if len(limits) > 1 else "list"


def _mx_check(address: str) -> None:
    if conf.SIGNUP_CHECK_MX:
        domain = address.rpartition("@")[2]
        if not mx.get_resolver().accepts_mail(domain):
            raise InvalidAddress(_("The domain %(domain)s does not accept e-mail.")
                                 % {"domain": domain})


def signup_rate_check(*, mailing_list: MailingList, ip: str | None) -> None:
    """Count a submission against the per-IP and per-list limits, or raise."""
    limits = _signup_limits(mailing_list, ip)
    refused = ratelimit.hit(limits)
    if refused:
        scope = _refused_scope(limits, refused)
        logger.warning("newsletter.signup.rate_limited",
                       extra={"list_id": mailing_list.id, "scope": scope})
        raise SignupRateLimited(scope)


def _signup_checked(*, mailing_list: MailingList, email: str, name: str, ip: str | None,
                    honeypot: str) -> tuple[str, str] | None:
    """The web half's checks: limits per IP and list, honeypot, address, name, MX.

    Returns (address, name), or None for a honeypot hit (answered like a success).
    """
    signup_rate_check(mailing_list=mailing_list, ip=ip)
    if honeypot:
        return None
    address = address_clean(email)
    name = name_clean(name)
    _mx_check(address)
    return address, name


def subscription_create(
    *, mailing_list: MailingList, email: str, name: str = "",
    consent_text: ConsentText | None = None, client: Client = Client(),
    honeypot: str = "",
) -> SignupOutcome:
    """A signup, processed at once: pending plus a confirmation mail (or confirmed at once).

    Raises ``SignupRateLimited`` (per IP or list), ``InvalidAddress`` or
    ``InvalidInput``. Every other case returns an outcome; the caller shows
    the same "check your inbox" answer for all of them (no enumeration).
    """
    checked = _signup_checked(mailing_list=mailing_list, email=email, name=name,
                              ip=client.ip, honeypot=honeypot)
    if checked is None:
        return SignupOutcome.HONEYPOT
    address, name = checked
    return _subscription_store(mailing_list=mailing_list, address=address, name=name,
                               consent_text=consent_text, client=client, at=timezone.now())


SIGNUP_QUEUE = "nl:signups"
SIGNUP_PROCESSING = "nl:signups:processing"
STALE_AFTER_S = 300


def subscription_request(
    *, mailing_list: MailingList, email: str, name: str = "",
    consent_text_id: int | None = None, client: Client = Client(), honeypot: str = "",
) -> SignupOutcome:
    """The signup form's service: check in the request, store in a worker.

    The request runs the cheap checks (honeypot, address and name, the optional
    MX check), then one Redis call counts the per-IP and per-list limits and,
    if they allow it, appends the signup to a queue in Redis. A worker on the
    transactional queue stores it (``signups_drain``): a flood of signups never
    waits on the database, and confirmation mails never wait behind bulk mail.
    Celery is only nudged when the queue was empty. With SIGNUP_ASYNC off it
    stores at once. Raises like ``subscription_create``.
    """
    if not conf.SIGNUP_ASYNC:
        return subscription_create(
            mailing_list=mailing_list, email=email, name=name, client=client,
            consent_text=consent_text_for(mailing_list, consent_text_id), honeypot=honeypot)
    if honeypot:
        signup_rate_check(mailing_list=mailing_list, ip=client.ip)
        return SignupOutcome.HONEYPOT
    address = address_clean(email)
    name = name_clean(name)
    _mx_check(address)
    payload = json.dumps({
        "request_id": uuid.uuid4().hex, "list_id": mailing_list.id, "address": address,
        "name": name, "consent_text_id": consent_text_id, "ip": client.ip,
        "user_agent": client.user_agent[:MAX_USER_AGENT], "source": str(client.source),
        "at": timezone.now().isoformat(), "language": translation.get_language() or "",
    })
    limits = _signup_limits(mailing_list, client.ip)
    refused, queued = ratelimit.hit_and_push(limits, SIGNUP_QUEUE, payload)
    if refused:
        raise SignupRateLimited(_refused_scope(limits, refused))
    if queued == 1:  # the queue was empty: no drain is running or scheduled
        from newsletter.tasks import signups_drain

        signups_drain.delay()
    return SignupOutcome.QUEUED


def signups_drain(*, limit: int = 1000, batch: int = 100) -> int:
    """Store queued signups in batches (at most ``limit``; then it asks for another run)."""
    client = get_redis()
    done = 0
    while done < limit:
        pipe = client.pipeline(transaction=False)
        for _slot in range(batch):
            pipe.lmove(SIGNUP_QUEUE, SIGNUP_PROCESSING, "LEFT", "RIGHT")
        raws = [raw for raw in pipe.execute() if raw is not None]
        if not raws:
            return done
        try:
            signups_store([json.loads(raw) for raw in raws])
        except Exception:
            # They stay in the processing list; signups_requeue_stale puts them back later.
            logger.exception("newsletter.signup.failed", extra={"count": len(raws)})
        else:
            pipe = client.pipeline(transaction=False)
            for raw in raws:
                pipe.lrem(SIGNUP_PROCESSING, 1, raw)
            pipe.execute()
        done += len(raws)
    if client.llen(SIGNUP_QUEUE):
        from newsletter.tasks import signups_drain as drain_task

        drain_task.delay()
    return done


def signups_store(payloads: list[dict]) -> Counter:
    """Store many queued signups at once; returns how many ended how (``SignupOutcome``).

    The rules are those of ``_subscription_store`` (one signup), applied in a
    few statements per batch instead of about fifteen per signup. Payloads
    seen before (by request id) are skipped.
    """
    client = get_redis()
    claims = [f"nl:signup:{p['request_id']}" for p in payloads]
    pipe = client.pipeline(transaction=False)
    for claim in claims:
        pipe.set(claim, "busy", nx=True, ex=STALE_AFTER_S // 2)
    fresh = pipe.execute()
    outcomes: Counter = Counter({SignupOutcome.DUPLICATE: fresh.count(None) + fresh.count(False)})
    claimed = [(p, c) for p, c, ok in zip(payloads, claims, fresh, strict=True) if ok]
    try:
        _signups_store([p for p, _ in claimed], outcomes)
    except BaseException:
        if claimed:
            client.delete(*[c for _, c in claimed])
        raise
    pipe = client.pipeline(transaction=False)
    for _payload, claim in claimed:
        pipe.set(claim, "done", ex=DAY)
    pipe.execute()
    return outcomes


def _signups_store(payloads: list[dict], outcomes: Counter) -> None:
    lists = MailingList.objects.in_bulk({p["list_id"] for p in payloads})
    live = [p for p in payloads if p["list_id"] in lists]
    outcomes[SignupOutcome.DROPPED] += len(payloads) - len(live)
    refused = ratelimit.hit_many([
        [(ratelimit.key_for("addr", p["address"]), conf.SIGNUP_RATE_PER_ADDRESS, HOUR)]
        for p in live])
    outcomes[SignupOutcome.ADDRESS_LIMITED] += sum(1 for r in refused if r)
    live = [p for p, r in zip(live, refused, strict=True) if not r]
    suppressed = suppressed_among(p["address"] for p in live)
    outcomes[SignupOutcome.SUPPRESSED] += sum(1 for p in live if p["address"] in suppressed)
    live = [p for p in live if p["address"] not in suppressed]
    if not live:
        return
    text_ids = {int(p["consent_text_id"]) for p in live
                if str(p.get("consent_text_id") or "").isdigit()
                and 0 < int(p["consent_text_id"]) < 2**31}
    texts = ConsentText.objects.in_bulk(text_ids)
    current: dict[int, ConsentText] = {}

    def consent_text(p: dict) -> ConsentText:
        shown = texts.get(int(p["consent_text_id"])) if str(
            p.get("consent_text_id") or "").isdigit() else None
        if shown is not None and shown.mailing_list_id == p["list_id"]:
            return shown
        if p["list_id"] not in current:
            current[p["list_id"]] = consent_text_current(lists[p["list_id"]])
        return current[p["list_id"]]

    with transaction.atomic():
        first_name: dict[str, str] = {}
        for p in live:
            first_name.setdefault(p["address"], p["name"])
        insert_rows(Subscriber, [Subscriber(email=a, name=n) for a, n in first_name.items()],
                    ignore_conflicts=True)
        subscriber_ids = dict(Subscriber.objects.filter(email__in=list(first_name))
                              .values_list("email", "id"))
        pairs = {(subscriber_ids[p["address"]], p["list_id"]) for p in live}
        insert_rows(Subscription,
                    [Subscription(subscriber_id=s, mailing_list_id=m) for s, m in pairs],
                    ignore_conflicts=True)
        subs = {(s.subscriber_id, s.mailing_list_id): s for s in Subscription.objects.filter(
            subscriber_id__in={s for s, _ in pairs}, mailing_list_id__in=lists)}
        changed: dict[int, Subscription] = {}
        records: list[ConsentRecord] = []
        to_mail: list[tuple[Subscription, dict]] = []
        for p in live:  # in queue order: a second signup sees what the first one did
            mailing_list = lists[p["list_id"]]
            sub = subs[(subscriber_ids[p["address"]], p["list_id"])]
            sub.mailing_list = mailing_list
            if sub.status == Status.CONFIRMED:
                outcomes[SignupOutcome.ALREADY_CONFIRMED] += 1
                continue
            try:
                at = datetime.fromisoformat(p["at"])
            except (KeyError, TypeError, ValueError):
                at = timezone.now()
            event = Event.RESUBSCRIBE if sub.status == Status.UNSUBSCRIBED else Event.SIGNUP
            sub.unsubscribed_at = None
            single = not mailing_list.double_opt_in
            if single:
                sub.status, sub.confirmed_at = Status.CONFIRMED, at
                outcomes[SignupOutcome.CONFIRMED] += 1
            else:
                sub.status, sub.requested_at = Status.PENDING, at
                to_mail.append((sub, p))
            changed[sub.id] = sub
            records.append(ConsentRecord(
                event=event, source=p.get("source") or Source.FORM, created_at=at,
                subscription=sub, mailing_list=mailing_list, list_slug=mailing_list.slug,
                address=p["address"], address_sha256=ConsentRecord.hash_address(p["address"]),
                ip=consent_client_ip(p.get("ip")),
                user_agent=user_agent_clean(p.get("user_agent")),
                consent_text=consent_text(p), detail="single opt-in" if single else ""))
        update_rows(Subscription, list(changed.values()),
                    ["status", "confirmed_at", "requested_at", "unsubscribed_at"])
        insert_rows(ConsentRecord, records)
        sent = confirmation_mails_send(
            [(sub, p["address"], p.get("language") or None) for sub, p in to_mail])
        outcomes.update(SignupOutcome.REQUESTED if ok else SignupOutcome.MAIL_LIMITED
                        for ok in sent)


def signups_requeue_stale(*, older_than_s: int = STALE_AFTER_S) -> int:
    """Put signups back that a crashed worker left in the processing list."""
    client = get_redis()
    cutoff = timezone.now() - timedelta(seconds=older_than_s)
    moved = 0
    for raw in client.lrange(SIGNUP_PROCESSING, 0, -1):
        try:
            stale = datetime.fromisoformat(json.loads(raw)["at"]) < cutoff
        except (ValueError, KeyError, TypeError):
            stale = True
        if stale and client.lrem(SIGNUP_PROCESSING, 1, raw):
            client.rpush(SIGNUP_QUEUE, raw)
            moved += 1
    return moved


def signup_process(payload: dict) -> SignupOutcome:
    """Store one queued signup. A signup processed before is not processed again."""
    claim = f"nl:signup:{payload['request_id']}"
    redis_client = get_redis()
    if not redis_client.set(claim, "busy", nx=True, ex=STALE_AFTER_S // 2):
        return SignupOutcome.DUPLICATE
    try:
        outcome = _signup_process(payload)
    except BaseException:
        redis_client.delete(claim)  # let a later attempt do it
        raise
    redis_client.set(claim, "done", ex=DAY)
    return outcome


def _signup_process(payload: dict) -> SignupOutcome:
    mailing_list = MailingList.objects.filter(id=payload["list_id"]).first()
    if mailing_list is None:
        return SignupOutcome.DROPPED
    try:
        at = datetime.fromisoformat(payload["at"])
    except (KeyError, TypeError, ValueError):
        at = timezone.now()
    client = Client(ip=payload.get("ip"), user_agent=payload.get("user_agent") or "",
                    source=payload.get("source") or Source.FORM)
    with translation.override(payload.get("language") or None):
        return _subscription_store(
            mailing_list=mailing_list, address=payload["address"], name=payload["name"],
            consent_text=consent_text_for(mailing_list, payload.get("consent_text_id")),
            client=client, at=at)


def _subscription_store(*, mailing_list: MailingList, address: str, name: str,
                        consent_text: ConsentText | None, client: Client,
                        at: datetime) -> SignupOutcome:
    """Limits per address, suppression, then the rows, the consent record and the mail."""
    if ratelimit.hit([(ratelimit.key_for("addr", address), conf.SIGNUP_RATE_PER_ADDRESS,
                       HOUR)]):
        return SignupOutcome.ADDRESS_LIMITED
    if is_suppressed(address):
        logger.info("newsletter.signup.suppressed", extra={"list_id": mailing_list.id})
        return SignupOutcome.SUPPRESSED
    consent_text = consent_text or consent_text_current(mailing_list)
    with transaction.atomic():
        subscriber, _created = Subscriber.objects.get_or_create(
            email=address, defaults={"name": name})
        subscription, _created = Subscription.objects.get_or_create(
            subscriber=subscriber, mailing_list=mailing_list)
        subscription = Subscription.objects.select_for_update().get(id=subscription.id)
        if subscription.status == Status.CONFIRMED:
            return SignupOutcome.ALREADY_CONFIRMED
        event = Event.RESUBSCRIBE if subscription.status == Status.UNSUBSCRIBED else Event.SIGNUP
        subscription.unsubscribed_at = None
        record = {"event": event, "source": client.source, "subscription": subscription,
                  "address": address, "ip": client.ip, "user_agent": client.user_agent,
                  "consent_text": consent_text, "at": at}
        if not mailing_list.double_opt_in:
            subscription.status = Status.CONFIRMED
            subscription.confirmed_at = at
            subscription.save()
            consent_record_add(**record, detail="single opt-in")
            return SignupOutcome.CONFIRMED
        subscription.status = Status.PENDING
        subscription.requested_at = at
        subscription.save()
        consent_record_add(**record)
        sent = confirmation_mail_send(subscription, address=address)
    return SignupOutcome.REQUESTED if sent else SignupOutcome.MAIL_LIMITED


def confirmation_mail_send(subscription: Subscription, *, address: str | None = None) -> bool:
    """Queue the confirmation mail, or let it wait while the address has enough open ones.

    A waiting mail is sent when one of them is clicked or 24 hours old
    (``newsletter.confirm_budget``). The mail holds the list's name (operator
    text) and the link, never anything the signer typed.
    """
    address = address or subscription.subscriber.email
    return confirmation_mails_send([(subscription, address, translation.get_language())])[0]


def confirmation_mails_send(items: list[tuple[Subscription, str, str | None]]) -> list[bool]:
    """``confirmation_mail_send`` for many (subscription, address, language) at once:
    the budgets in one Redis round trip, the templates rendered once per list and
    language, the mails recorded in one statement. True for each mail queued (False:
    it waits for a free slot of its address, ``newsletter.confirm_budget``)."""
    refused = [not taken for taken in confirm_budget.confirmation_slots_take(
        [(address, sub.id) for sub, address, _ in items])]
    urls = links.confirm_urls([sub.id for (sub, _, _), no in zip(items, refused, strict=True)
                               if not no])
    mails = []
    templates: dict[tuple[int, str | None], _ConfirmationTemplate] = {}
    for (sub, address, language), limited in zip(items, refused, strict=True):
        if limited:
            logger.info("newsletter.confirmation.waiting", extra={"subscription_id": sub.id})
            continue
        key = (sub.mailing_list_id, language)
        if key not in templates:
            with translation.override(language):
                templates[key] = _ConfirmationTemplate(sub.mailing_list)
        mails.append(templates[key].mail(address, urls[sub.id]))
    if mails:
        transactional_emails_send(mails)
    return [not limited for limited in refused]


class _ConfirmationTemplate:
    """A list's confirmation mail, rendered once (in the active language) with a slot
    where each mail's link goes: escaped for HTML as the template would, plain in text."""

    def __init__(self, mailing_list: MailingList):
        self.slot = f"pwlink{uuid.uuid4().hex}"  # letters and digits: no escaping changes it
        context = {
            "list_name": _plain(mailing_list.name),
            "confirm_url": self.slot,
            "valid_days": conf.CONFIRM_LINK_MAX_AGE_DAYS,
            "site_url": settings.SITE_URL,
        }
        self.subject = _plain(render_to_string("newsletter/email/confirm_subject.txt", context))
        self.text = render_to_string("newsletter/email/confirm.txt", context)
        self.html = render_to_string("newsletter/email/confirm.html", context)
        from_email = mailing_list.from_email or settings.DEFAULT_FROM_EMAIL
        if mailing_list.from_name:
            from_email = formataddr((_plain(mailing_list.from_name), from_email))
        self.from_email = from_email
        self.headers = {"Reply-To": mailing_list.reply_to} if mailing_list.reply_to else {}

    def mail(self, address: str, url: str) -> dict:
        """The keyword arguments of ``transactional_email_send`` for one mail."""
        return {"to": address, "subject": self.subject.replace(self.slot, url),
                "body_text": self.text.replace(self.slot, url),
                "body_html": self.html.replace(self.slot, escape(url)),
                "from_email": self.from_email, "headers": self.headers,
                "purpose": "confirmation"}
