"""Campaign services: compose, check, preview, test, schedule, start, pause/resume/cancel.

Interfaces (the admin, the beat task) call these; they raise ``CampaignError``
with a message meant for the editor. Starting hands the content to the
sending engine (``mailing_create``: a snapshot) and builds its ledger
(``mailing_start``: one ``Delivery`` per recipient), so what a campaign is sent
to is frozen at that instant. The lifecycle of a started campaign is the
mailing's (``sending.lifecycle``); ``campaign_sync`` mirrors it back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import formataddr
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from newsletter import conf, links
from newsletter.audience import (
    AudienceError,
    audience_count,
    audience_filter_parse,
    audience_queryset,
)
from newsletter.campaign_models import Campaign, Layout
from newsletter.campaign_render import (
    DEFAULT_LAYOUT_CSS,
    DEFAULT_LAYOUT_HTML,
    DEFAULT_LAYOUT_NAME,
    Parts,
    assemble,
    layout_problems,
)
from newsletter.exceptions import NewsletterError
from newsletter.models import Subscription
from newsletter.personalisation import personalisation_problem
from newsletter.timezones import UnknownTimezone, timezone_resolve
from newsletter.tracking import tracking_prepare
from newsletter.tracking_models import TrackingEvent
from sending import conf as sending_conf
from sending.lifecycle import LifecycleError, mailing_cancel, mailing_pause, mailing_resume
from sending.models import Mailing
from sending.render import TemplateError, compile_template

logger = logging.getLogger(__name__)
State = Campaign.State
MAX_TEST_ADDRESSES = 5
SAMPLE_CONTEXT = {
    "email": "reader@example.org",
    "subscriber": {"email": "reader@example.org", "name": "Sample Reader",
                   "attributes": {}},
    "unsubscribe_url": "https://example.invalid/u/sample/",
    "one_click_url": "https://example.invalid/u/sample/one-click/",
    "preferences_url": "https://example.invalid/p/sample/",
    "list_id": "sample.example.invalid",
}


class CampaignError(NewsletterError, ValueError):
    """The campaign cannot do this now; the message says why, for the editor."""


# --------------------------------------------------------------------------- layouts
def layout_default() -> Layout:
    """The layout for campaigns without one (the shipped responsive one, made if missing)."""
    layout = Layout.objects.filter(is_default=True).first()
    if layout is None:
        layout, _ = Layout.objects.get_or_create(
            name=DEFAULT_LAYOUT_NAME,
            defaults={"html": DEFAULT_LAYOUT_HTML, "css": DEFAULT_LAYOUT_CSS,
                      "is_default": True})
    return layout


def layout_validate(layout: Layout) -> list[str]:
    problems = layout_problems(layout.html, layout.postal_address)
    problem = personalisation_problem(_strip_slots(layout.html), html=True)
    if problem:
        problems.append(f"Layout HTML: {problem}")
    return problems


def _strip_slots(html: str) -> str:
    import re

    return re.sub(r"\{\{\s*(content|postal_address|preheader)\s*\}\}", "", html)


# --------------------------------------------------------------------------- content
def campaign_layout(campaign: Campaign) -> Layout:
    return campaign.layout or layout_default()


def campaign_sender(campaign: Campaign) -> tuple[str, str, str]:
    """(from name, from address, reply-to), falling back to the first list's settings."""
    first = campaign.lists.order_by("id").first() if campaign.pk else None
    name = campaign.from_name or (first.from_name if first else "")
    address = campaign.from_email or (first.from_email if first else "")
    if not address:
        from django.conf import settings

        address = settings.DEFAULT_FROM_EMAIL
    reply_to = campaign.reply_to or (first.reply_to if first else "")
    return name, address, reply_to


def campaign_parts(campaign: Campaign) -> Parts:
    """The HTML and text templates: body in the layout, CSS inlined, text generated or edited."""
    layout = campaign_layout(campaign)
    return assemble(body=campaign.body, body_format=campaign.body_format,
                    layout_html=layout.html, layout_css=layout.css,
                    postal_address=layout.postal_address, preheader=campaign.preheader,
                    text_body=campaign.text_body, base_url=settings.SITE_URL)


def campaign_errors(campaign: Campaign) -> dict[str, str]:
    """Field -> message for what makes the campaign unsendable as written."""
    errors: dict[str, str] = {}
    if not campaign.subject.strip():
        errors["subject"] = "The subject is empty."
    if "\n" in campaign.subject or "\r" in campaign.subject:
        errors["subject"] = "The subject must be one line."
    if not campaign.body.strip():
        errors["body"] = "The body is empty."
    for field, html in (("subject", False), ("preheader", False), ("body", True),
                        ("text_body", False)):
        problem = personalisation_problem(getattr(campaign, field), html=html)
        if problem:
            errors.setdefault(field, f"Personalisation: {problem}")
            continue
        template = compile_template(getattr(campaign, field), html=html)
        if any(name.split(".")[0] == "track" for name in template.fields):
            errors.setdefault(field, "Personalisation: {{ track... }} is filled in by click "
                                     "tracking when the campaign starts; do not write it.")
    return errors


# --------------------------------------------------------------------------- audience
def campaign_audience(campaign: Campaign) -> QuerySet[Subscription]:
    """Confirmed subscriptions the campaign goes to (one row per subscription)."""
    query = audience_queryset(
        lists=campaign.lists.values_list("id", flat=True),
        exclude_lists=campaign.exclude_lists.values_list("id", flat=True),
        segment=campaign.segment_attributes, subscribed_after=campaign.subscribed_after,
        subscribed_before=campaign.subscribed_before)
    return _engagement_filter(campaign, query)


def _engagement_filter(campaign: Campaign, query: QuerySet[Subscription]) -> QuerySet:
    """Segments by human clicks and opens (linked tracking only; machine hits never count).
    Matched by subscriber, so a click in a campaign to another list counts too."""
    if campaign.segment_clicked_campaign_id:
        clicked = TrackingEvent.objects.filter(
            campaign_id=campaign.segment_clicked_campaign_id, kind="click", machine=False)
        query = query.filter(subscriber_id__in=Subscription.objects.filter(
            id__in=clicked.values("subscription_id")).values("subscriber_id"))
    if campaign.segment_opened_days:
        since = timezone.now() - timedelta(days=campaign.segment_opened_days)
        opened = TrackingEvent.objects.filter(kind="open", machine=False, at__gte=since)
        query = query.filter(subscriber_id__in=Subscription.objects.filter(
            id__in=opened.values("subscription_id")).values("subscriber_id"))
    return query


def campaign_audience_size(campaign: Campaign) -> int:
    """Distinct addresses (a subscriber on two chosen lists gets one mail)."""
    return audience_count(campaign_audience(campaign))


def segment_attributes_validate(value) -> dict:
    """The attribute filter in its stored shape (old ``{"city": "Berlin"}`` is converted)."""
    try:
        return audience_filter_parse(value).as_json()
    except AudienceError as error:
        raise CampaignError(str(error)) from error


# --------------------------------------------------------------------------- checklist
@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""
    blocking: bool = True  # False: a warning, scheduling is still allowed
    items: tuple[str, ...] = ()  # a list under the line (e.g. the spam rules hit)

    @property
    def level(self) -> str:
        return "ok" if self.ok else ("error" if self.blocking else "warning")


def dkim_configured(domain: str) -> bool:
    conf = sending_conf.get()
    return any((conf.dkim_key_dir / domain / f"{selector}.pem").is_file()
               for selector in (conf.dkim_selector, conf.dkim_ed25519_selector) if selector)


def campaign_checklist(campaign: Campaign) -> list[Check]:
    """The pre-send checklist shown before scheduling (and enforced when it starts)."""
    checks: list[Check] = []
    errors = campaign_errors(campaign)
    checks.append(Check("Subject is not empty", bool(campaign.subject.strip()),
                        errors.get("subject", "")))
    content_errors = [m for f, m in errors.items() if f != "subject"]
    checks.append(Check("Body and personalisation are valid", not content_errors,
                        " ".join(content_errors)))
    layout = campaign_layout(campaign)
    problems = layout_validate(layout)
    checks.append(Check(f"Layout “{layout.name}” has the unsubscribe link and postal address",
                        not problems, " ".join(problems)))
    html_fields: list[str] = []
    text_fields: list[str] = []
    text = ""
    try:
        parts = campaign_parts(campaign)
        text = parts.text
        html_fields = compile_template(parts.html, html=True).fields
        text_fields = compile_template(parts.text).fields
    except TemplateError:
        pass
    checks.append(Check("Unsubscribe link present (HTML and text)",
                        "unsubscribe_url" in html_fields and "unsubscribe_url" in text_fields,
                        "" if "unsubscribe_url" in text_fields else
                        "Put {{ unsubscribe_url }} in the plain-text part."))
    checks.append(Check("Plain-text part present", bool(text.strip()),
                        "" if campaign.text_body.strip() else "generated from the HTML"))
    _, from_email, _ = campaign_sender(campaign)
    domain = from_email.rpartition("@")[2].lower()
    has_key = bool(domain) and dkim_configured(domain)
    checks.append(Check(f"DKIM key configured for {domain or '(no From domain)'}", has_key,
                        "" if has_key else
                        "No key file in DKIM_KEY_DIR for this domain: mail goes out unsigned "
                        "and is likely to land in spam.", blocking=False))
    size = campaign_audience_size(campaign) if campaign.pk else 0
    chosen = bool(campaign.pk) and campaign.lists.exists()
    checks.append(Check("Audience is not empty", size > 0,
                        f"{size} confirmed subscriber{'s' if size != 1 else ''}" if chosen
                        else "Choose one or more lists."))
    source = campaign.segment_clicked_campaign
    if source is not None and source.tracking_privacy != "linked":
        checks.append(Check(
            f"Segment “clicked in {source.name}” can select someone", False,
            "That campaign counted clicks without linking them to subscribers (counts only): "
            "nobody can be selected by them.", blocking=False))
    return checks


def checklist_blocking(checks: list[Check]) -> list[Check]:
    return [c for c in checks if not c.ok and c.blocking]


# --------------------------------------------------------------------------- editing
def campaign_assert_editable(campaign: Campaign) -> None:
    state = Campaign.objects.filter(pk=campaign.pk).values_list("state", flat=True).first() \
        if campaign.pk else State.DRAFT
    if state not in Campaign.EDITABLE_STATES:
        raise CampaignError(
            f"This campaign is {state} and can no longer be edited: what it sends was fixed "
            "when it started. Pause or cancel it, and duplicate it for a corrected version."
            if state in (State.SENDING, State.PAUSED) else
            f"This campaign is {state} and can no longer be edited.")


def campaign_save(campaign: Campaign, *, user=None) -> Campaign:
    """Store a draft (or scheduled) campaign; refused once it has started."""
    campaign_assert_editable(campaign)
    campaign.segment_attributes = segment_attributes_validate(campaign.segment_attributes or {})
    if campaign.pk is None and user is not None and user.is_authenticated:
        campaign.created_by = user
    campaign.save()
    return campaign


def campaign_duplicate(campaign: Campaign, *, user=None) -> Campaign:
    """A new draft with the same content and audience (to correct a started campaign)."""
    copy = Campaign.objects.create(
        name=f"Copy of {campaign.name}"[:200], subject=campaign.subject,
        preheader=campaign.preheader, from_name=campaign.from_name,
        from_email=campaign.from_email, reply_to=campaign.reply_to, layout=campaign.layout,
        body_format=campaign.body_format, body=campaign.body, text_body=campaign.text_body,
        segment_attributes=campaign.segment_attributes,
        subscribed_after=campaign.subscribed_after,
        subscribed_before=campaign.subscribed_before, tags=campaign.tags, pool=campaign.pool,
        canary=campaign.canary,
        track_clicks=campaign.track_clicks, track_opens=campaign.track_opens,
        tracking_privacy=campaign.tracking_privacy,
        segment_clicked_campaign=campaign.segment_clicked_campaign,
        segment_opened_days=campaign.segment_opened_days,
        created_by=user if user is not None and user.is_authenticated else None)
    copy.lists.set(campaign.lists.all())
    copy.exclude_lists.set(campaign.exclude_lists.all())
    return copy


# --------------------------------------------------------------------------- preview
def preview_context(subscription_id: int | None) -> dict:
    if subscription_id:
        context = links.recipient_contexts([subscription_id]).get(subscription_id)
        if context:
            return context
    return SAMPLE_CONTEXT


@dataclass(frozen=True)
class Preview:
    subject: str
    preheader: str
    html: str
    text: str
    from_header: str


def campaign_preview(campaign: Campaign, subscription_id: int | None = None) -> Preview:
    """The mail as this subscriber would get it (a sample reader when none is given).

    A chosen subscriber's unsubscribe and preference links become test links (pages that
    say nothing changed, ``newsletter.testsend``): an editor clicking through a preview
    never unsubscribes the person, nor holds their preference link."""
    from newsletter.testsend import test_link_url

    context = preview_context(subscription_id)
    if subscription_id and context is not SAMPLE_CONTEXT:
        context = {key: value for key, value in context.items() if key != "unsubscribe_mailto"}
        context.update(unsubscribe_url=test_link_url("unsubscribe"),
                       one_click_url=test_link_url("one-click"),
                       preferences_url=test_link_url("preferences"))
    parts = campaign_parts(campaign)
    name, address, _ = campaign_sender(campaign)
    return Preview(
        subject=compile_template(campaign.subject).render(context),
        preheader=compile_template(campaign.preheader).render(context),
        html=compile_template(parts.html, html=True).render(context),
        text=compile_template(parts.text).render(context),
        from_header=formataddr((name, address)) if name else address,
    )


def preview_subscription_find(campaign: Campaign, address: str) -> int:
    """Any subscriber by address (preferably on one of the campaign's lists), for a preview."""
    address = address.strip()
    found = Subscription.objects.filter(subscriber__email__iexact=address).order_by("id")
    lists = set(campaign.lists.values_list("id", flat=True))
    rows = list(found.values_list("id", "mailing_list_id"))
    if not rows:
        raise CampaignError(f"No subscriber with the address {address!r}.")
    on_list = [sid for sid, list_id in rows if list_id in lists]
    return (on_list or [rows[0][0]])[0]


def preview_subscribers(campaign: Campaign, limit: int = 50) -> list[Subscription]:
    return list(campaign_audience(campaign).select_related("subscriber")
                .order_by("subscriber__email")[:limit])


# --------------------------------------------------------------------------- test send
def campaign_test_send(campaign: Campaign, addresses: list[str],
                       subscription_id: int | None = None) -> int:
    """Mail the campaign, marked [TEST], to a few addresses through the transactional pool,
    as the chosen subscriber gets it, its links leading to pages that change nothing
    (``newsletter.testsend``)."""
    from newsletter.testsend import test_mail_render
    from sending.transactional import transactional_email_send

    addresses = [a.strip() for a in addresses if a.strip()]
    if not addresses:
        raise CampaignError("Give at least one address for the test.")
    if len(addresses) > MAX_TEST_ADDRESSES:
        raise CampaignError(f"A test goes to at most {MAX_TEST_ADDRESSES} addresses.")
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError as error:
            raise CampaignError(f"{address!r} is not a valid e-mail address.") from error
    errors = campaign_errors(campaign)
    if errors:
        raise CampaignError("Fix the campaign first: " + " ".join(errors.values()))
    mail = test_mail_render(campaign, subscription_id)
    for address in addresses:
        transactional_email_send(
            to=address, subject=f"[TEST] {mail.subject}", body_text=mail.text,
            body_html=mail.html, from_email=mail.from_header, headers=mail.headers,
            purpose="test")
    logger.info("campaign.test_sent", extra={"campaign_id": campaign.id,
                                             "count": len(addresses)})
    return len(addresses)


# --------------------------------------------------------------------------- schedule
def timezone_check(tz_name: str) -> str:
    """The zone's canonical name, or a CampaignError naming the closest ones."""
    try:
        return timezone_resolve(tz_name)
    except UnknownTimezone as error:
        raise CampaignError(str(error)) from error


def parse_local_time(value: str, tz_name: str) -> datetime:
    """An editor's wall-clock time (``YYYY-MM-DDTHH:MM``) in their zone, as an aware UTC time."""
    zone = ZoneInfo(timezone_check(tz_name))
    try:
        naive = datetime.fromisoformat(value.strip())
    except ValueError as error:
        raise CampaignError("Give the date and time as YYYY-MM-DD HH:MM.") from error
    if naive.tzinfo is not None:
        naive = naive.replace(tzinfo=None)
    local = naive.replace(tzinfo=zone)
    # A time skipped by a DST change (e.g. 02:30 on the spring-forward night) does not exist.
    if local.astimezone(ZoneInfo("UTC")).astimezone(zone).replace(tzinfo=None) != naive:
        raise CampaignError(f"{naive:%Y-%m-%d %H:%M} does not exist in {tz_name} "
                            "(clocks skip it); choose another time.")
    return local.astimezone(ZoneInfo("UTC"))


def campaign_schedule(campaign: Campaign, when: datetime, tz_name: str = "UTC") -> Campaign:
    """Schedule (or reschedule) a campaign for an aware time; the checklist must pass."""
    if timezone.is_naive(when):
        raise CampaignError("The scheduled time needs a time zone.")
    tz_name = timezone_check(tz_name)
    if when < timezone.now() - timedelta(minutes=1):
        raise CampaignError("That time has passed; choose a time in the future.")
    blocking = checklist_blocking(campaign_checklist(campaign))
    if blocking:
        raise CampaignError("The checklist is not complete: "
                            + "; ".join(f"{c.name} ({c.detail})" if c.detail else c.name
                                        for c in blocking))
    changed = Campaign.objects.filter(pk=campaign.pk, state__in=Campaign.EDITABLE_STATES).update(
        state=State.SCHEDULED, scheduled_at=when, schedule_timezone=tz_name, last_error="",
        updated_at=timezone.now())
    campaign.refresh_from_db()
    if not changed:
        raise CampaignError(f"A {campaign.state} campaign cannot be scheduled.")
    return campaign


def campaign_unschedule(campaign: Campaign) -> Campaign:
    changed = Campaign.objects.filter(pk=campaign.pk, state=State.SCHEDULED).update(
        state=State.DRAFT, scheduled_at=None, updated_at=timezone.now())
    campaign.refresh_from_db()
    if not changed:
        raise CampaignError(f"A {campaign.state} campaign is not scheduled.")
    return campaign


# --------------------------------------------------------------------------- start
def campaigns_due(now: datetime | None = None) -> QuerySet[Campaign]:
    return Campaign.objects.filter(state=State.SCHEDULED,
                                   scheduled_at__lte=now or timezone.now())


def _ledger_source(campaign: Campaign) -> dict:
    rows = (campaign_audience(campaign).order_by("id")
            .values_list("id", "subscriber__email"))
    if connection.vendor == "postgresql":
        sql, params = rows.query.sql_with_params()
        return {"source_sql": sql, "source_params": params}
    return {"recipients": list(rows)}


def campaign_preflight(campaign: Campaign) -> list:
    """The reputation pre-flight for this campaign's From domain and our relays (DNS)."""
    from deliverability.identity import current_identity
    from deliverability.preflight import DomainTarget, run_checks
    from deliverability.resolver import DnsResolver

    identity = current_identity()
    _, from_email, _ = campaign_sender(campaign)
    domain = from_email.rpartition("@")[2].lower()
    target = next((d for d in identity.domains if d.domain == domain), DomainTarget(domain))
    return run_checks(DnsResolver(timeout=5), relays=identity.relays, domains=[target],
                      from_domains=[domain], return_path_domain=identity.return_path_domain,
                      open_relay=False)


def _preflight_verdict(campaign_id: int) -> tuple[str, str]:
    """(mode, failures as text) before a start; DNS runs outside any transaction."""
    mode = conf.PREFLIGHT_BEFORE_START
    campaign = Campaign.objects.filter(id=campaign_id).first()
    if mode == "off" or campaign is None:
        return mode, ""
    failed = [r for r in campaign_preflight(campaign) if r.status == "fail"]
    return mode, "; ".join(f"{r.check} {r.target}: {r.detail}" for r in failed)


def campaign_start(campaign_id: int, *, now: datetime | None = None) -> Campaign | None:
    """Start one due campaign: snapshot into a mailing and build its ledger.

    The claim (scheduled -> sending) is a conditional update inside the same
    transaction as the ledger, so two beats never start a campaign twice and a
    failure leaves it as it was. A campaign whose checklist fails goes back to
    draft with the reason in ``last_error``. Returns None if it was not due.
    """
    now = now or timezone.now()
    if not Campaign.objects.filter(id=campaign_id, state=State.SCHEDULED,
                                   scheduled_at__lte=now).exists():
        return None
    mode, preflight_failures = _preflight_verdict(campaign_id)
    try:
        if preflight_failures and mode == "block":
            raise CampaignError("not started, the pre-flight checks failed: "
                                + preflight_failures)
        with transaction.atomic():
            claimed = Campaign.objects.filter(
                id=campaign_id, state=State.SCHEDULED, scheduled_at__lte=now,
            ).update(state=State.SENDING, started_at=now, updated_at=now,
                     last_error=(f"Pre-flight warnings (sent anyway): {preflight_failures}"
                                 [:2000] if preflight_failures else ""))
            if not claimed:
                return None
            campaign = Campaign.objects.get(id=campaign_id)
            blocking = checklist_blocking(campaign_checklist(campaign))
            if blocking:
                raise CampaignError("not started, the checklist failed: "
                                    + "; ".join(c.name for c in blocking))
            parts = tracking_prepare(campaign, campaign_parts(campaign))
            name, address, reply_to = campaign_sender(campaign)
            first = campaign.lists.order_by("id").first()
            from sending.services import mailing_create, mailing_start

            mailing = mailing_create(
                from_email=formataddr((name, address)) if name else address,
                subject=campaign.subject, text=parts.text, html=parts.html,
                reply_to=reply_to, list_id=links.list_id(first) if first else "",
                pool=campaign.pool, reference=f"campaign:{campaign.id}")
            campaign.mailing = mailing
            campaign.save(update_fields=["mailing"])
            mailing_start(mailing=mailing, **_ledger_source(campaign),
                          canary={"on": True, "off": False}.get(campaign.canary))
    except (CampaignError, TemplateError, ValueError) as error:
        Campaign.objects.filter(id=campaign_id, state=State.SCHEDULED).update(
            state=State.DRAFT, last_error=str(error)[:2000], updated_at=timezone.now())
        logger.warning("campaign.start_failed", extra={"campaign_id": campaign_id,
                                                        "error": str(error)})
        return Campaign.objects.filter(id=campaign_id).first()
    logger.info("campaign.started", extra={"campaign_id": campaign_id,
                                           "mailing_id": mailing.id,
                                           "recipients": mailing.recipients})
    campaign.refresh_from_db()
    return campaign


def campaigns_start_due(now: datetime | None = None) -> int:
    """The beat job: start every due campaign, and mirror mailing states. Idempotent."""
    started = 0
    for campaign_id in list(campaigns_due(now).values_list("id", flat=True)):
        campaign = campaign_start(campaign_id, now=now)
        if campaign is not None and campaign.mailing_id:
            started += 1
    for campaign in Campaign.objects.filter(state__in=[State.SENDING, State.PAUSED],
                                            mailing__isnull=False).select_related("mailing"):
        campaign_sync(campaign)
    return started


# --------------------------------------------------------------------------- lifecycle
_FROM_MAILING = {
    Mailing.State.DRAFT: State.SENDING, Mailing.State.BUILDING: State.SENDING,
    Mailing.State.SENDING: State.SENDING, Mailing.State.PAUSED: State.PAUSED,
    Mailing.State.DONE: State.SENT, Mailing.State.CANCELLED: State.CANCELLED,
}


def campaign_state_shown(campaign: Campaign) -> str:
    """The state a page shows: the mailing's, mirrored, for a campaign loaded with its
    mailing (``select_related``), without the write ``campaign_sync`` makes."""
    if campaign.mailing_id is None:
        return campaign.state
    return _FROM_MAILING.get(campaign.mailing.state) or campaign.state


def campaign_sync(campaign: Campaign) -> Campaign:
    """Mirror the mailing's state (guardrail pauses, done) onto the campaign."""
    if campaign.mailing_id is None:
        return campaign
    mailing_state = Mailing.objects.filter(id=campaign.mailing_id).values_list(
        "state", flat=True).first()
    wanted = _FROM_MAILING.get(mailing_state)
    if wanted and wanted != campaign.state:
        Campaign.objects.filter(pk=campaign.pk, state=campaign.state).update(
            state=wanted, updated_at=timezone.now())
        campaign.refresh_from_db()
    return campaign


def campaign_pause(campaign: Campaign, reason: str = "") -> Campaign:
    campaign = campaign_sync(campaign)
    if campaign.state != State.SENDING or campaign.mailing is None:
        raise CampaignError(_lifecycle_refusal("paused", campaign.state))
    try:
        mailing_pause(campaign.mailing, reason=reason or "paused by an editor")
    except LifecycleError as error:
        raise CampaignError(f"Cannot pause: {error}.") from error
    return campaign_sync(campaign)


def campaign_resume(campaign: Campaign) -> Campaign:
    campaign = campaign_sync(campaign)
    if campaign.state != State.PAUSED or campaign.mailing is None:
        raise CampaignError(_lifecycle_refusal("resumed", campaign.state))
    try:
        mailing_resume(campaign.mailing)
    except LifecycleError as error:
        raise CampaignError(f"Cannot resume: {error}.") from error
    return campaign_sync(campaign)


def campaign_cancel(campaign: Campaign) -> Campaign:
    """Draft or scheduled: cancelled, nothing sent. Sending or paused: the rest is not sent."""
    campaign = campaign_sync(campaign)
    if campaign.state in (State.DRAFT, State.SCHEDULED):
        changed = Campaign.objects.filter(pk=campaign.pk, state=campaign.state).update(
            state=State.CANCELLED, updated_at=timezone.now())
        campaign.refresh_from_db()
        if changed:
            return campaign
        campaign = campaign_sync(campaign)  # the scheduler started it meanwhile
    if campaign.state in (State.SENDING, State.PAUSED) and campaign.mailing is not None:
        try:
            mailing_cancel(campaign.mailing)
        except LifecycleError as error:
            raise CampaignError(f"Cannot cancel: {error}.") from error
        return campaign_sync(campaign)
    raise CampaignError(_lifecycle_refusal("cancelled", campaign.state))


def _lifecycle_refusal(verb: str, state: str) -> str:
    hints = {
        ("paused", State.DRAFT): "it has not started; nothing is being sent",
        ("paused", State.SCHEDULED): "it has not started; unschedule it to keep it from starting",
        ("paused", State.PAUSED): "it is already paused",
        ("resumed", State.SENDING): "it is sending already",
        ("resumed", State.DRAFT): "only a paused campaign can be resumed; schedule it instead",
        ("resumed", State.SCHEDULED): "it is scheduled and will start on its own",
        ("cancelled", State.CANCELLED): "it is already cancelled",
        ("cancelled", State.SENT): "everything has been sent already",
    }
    allowed = {"paused": "a sending", "resumed": "a paused",
               "cancelled": "a draft, scheduled, sending or paused"}[verb]
    hint = hints.get((verb, state), f"only {allowed} campaign can be {verb}")
    return f"A {state} campaign cannot be {verb}: {hint}."

