"""Sending a campaign now: what the editor must know first, and a start that does not wait.

``send_checks`` adds to the checklist what only matters when mail leaves: the
reputation pre-flight (SPF, DKIM, DMARC, blocklists; blocking when
``PREFLIGHT_BEFORE_START=block``, as ``campaign_start`` enforces) and providers
whose breaker holds mail back. ``send_summary`` is what the "Send now"
confirmation shows; ``campaign_send_now`` schedules for this instant and
enqueues the start task at once (the beat job remains the safety net: a due
campaign is started by its next tick if the enqueue is lost).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from email.utils import formataddr

from django.db import transaction
from django.utils import timezone

from newsletter import conf
from newsletter.campaign_models import Campaign
from newsletter.campaigns import (
    CampaignError,
    Check,
    campaign_audience_size,
    campaign_checklist,
    campaign_preflight,
    campaign_schedule,
    campaign_sender,
    checklist_blocking,
)

logger = logging.getLogger(__name__)
PREFLIGHT_CACHE_SECONDS = 600
HELD_STATES = ("paused", "manual")


def in_words(seconds: float) -> str:
    """A duration as people say it: "in 4 h", "in 3 min", "in 1 d 2 h"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return "in less than a minute"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"in {minutes} min"
    if days < 1:
        rest = minutes - hours * 60
        return f"in {hours} h" + (f" {rest} min" if rest and hours < 6 else "")
    rest = hours - days * 24
    return f"in {days} d" + (f" {rest} h" if rest else "")


# --------------------------------------------------------------------------- pre-flight
def _preflight_results(campaign: Campaign) -> list:
    """The pre-flight for the campaign's From domain, cached: it asks DNS."""
    _, from_email, _ = campaign_sender(campaign)
    domain = from_email.rpartition("@")[2].lower()
    from config.redis import get_redis

    key = f"newsletter:preflight:{conf.PREFLIGHT_BEFORE_START}:{domain}"
    redis = get_redis()
    cached = redis.get(key)
    if cached is not None:
        return json.loads(cached)
    found = [r.as_dict() for r in campaign_preflight(campaign)]
    redis.set(key, json.dumps(found), ex=PREFLIGHT_CACHE_SECONDS)
    return found


def preflight_checks(campaign: Campaign) -> list[Check]:
    mode = conf.PREFLIGHT_BEFORE_START
    if mode == "off":
        return [Check("Pre-flight checks (SPF, DKIM, DMARC, blocklists)", True,
                      "not run before sending (PREFLIGHT_BEFORE_START=off)")]
    try:
        results = _preflight_results(campaign)
    except Exception as error:  # DNS down or misconfigured: say so, never hide the page
        logger.warning("campaign.preflight_unavailable", extra={"error": str(error)})
        return [Check("Pre-flight checks (SPF, DKIM, DMARC, blocklists)", False,
                      f"could not run: {error}", blocking=False)]
    bad = [r for r in results if r["status"] in ("fail", "warn")]
    if not bad:
        return [Check("Pre-flight checks (SPF, DKIM, DMARC, blocklists)", True,
                      f"{len(results)} passed")]
    return [Check(f"Pre-flight: {r['check'].upper()} {r['target']}", False, r["detail"],
                  blocking=mode == "block" and r["status"] == "fail") for r in bad]


# --------------------------------------------------------------------------- breakers
def _pools(campaign: Campaign) -> set[str]:
    from sending.models import RelayPool

    if campaign.pool_id:
        return {campaign.pool.name}
    return set(RelayPool.objects.filter(purpose="bulk").values_list("name", flat=True))


def held_providers(campaign: Campaign) -> list[dict]:
    """Breakers that hold back this campaign's mail (its pool, or every pool's)."""
    from deliverability.breaker.engine import Breaker
    from deliverability.breaker_views import breaker_rows

    pools = _pools(campaign)
    rows = [r for r in breaker_rows(Breaker()) if r["state"] in HELD_STATES
            and (not pools or r["pool"].partition("@")[0] in pools or r["pool"] == "*")]
    now = time.time()
    for row in rows:
        row["when"] = (in_words(row["until"].timestamp() - now) if row["until"]
                       else "when an operator resumes it")
    return rows


def provider_checks(campaign: Campaign) -> list[Check]:
    try:
        rows = held_providers(campaign)
    except Exception as error:  # Redis unreachable: the start would fail loudly anyway
        return [Check("Providers accepting mail", False,
                      f"breaker state unavailable: {error}", blocking=False)]
    if not rows:
        return [Check("Providers accepting mail", True, "no provider is paused")]
    return [Check(f"{r['provider_name']} is paused", False,
                  f"mail to its addresses waits and goes {r['when']} "
                  f"({r['reason'] or r['state']}; pool {r['pool']}); see the breaker page.",
                  blocking=False) for r in rows]


def send_checks(campaign: Campaign) -> list[Check]:
    return preflight_checks(campaign) + provider_checks(campaign)


def campaign_full_checklist(campaign: Campaign) -> list[Check]:
    """The checklist the editor sees: content and audience, the content check (images,
    size, SpamAssassin; never blocking), then pre-flight and breakers."""
    from newsletter.content_check import content_checks

    return campaign_checklist(campaign) + content_checks(campaign) + send_checks(campaign)


# --------------------------------------------------------------------------- send now
@dataclass(frozen=True)
class SendSummary:
    recipients: int
    lists: list[str]
    excluded: list[str]
    sender: str
    reply_to: str
    warnings: list[Check]
    blocking: list[Check]


def send_summary(campaign: Campaign) -> SendSummary:
    checks = campaign_full_checklist(campaign)
    name, address, reply_to = campaign_sender(campaign)
    return SendSummary(
        recipients=campaign_audience_size(campaign),
        lists=list(campaign.lists.order_by("name").values_list("name", flat=True)),
        excluded=list(campaign.exclude_lists.order_by("name").values_list("name", flat=True)),
        sender=formataddr((name, address)) if name else address,
        reply_to=reply_to,
        warnings=[c for c in checks if not c.ok and not c.blocking],
        blocking=checklist_blocking(checks))


def campaign_send_now(campaign: Campaign, *, expected_recipients: int | None = None,
                      tz_name: str = "UTC") -> Campaign:
    """Schedule for now and enqueue the start at once.

    ``expected_recipients`` is the count the editor confirmed: if the audience
    changed since (an import, unsubscribes), the editor confirms again.
    """
    summary = send_summary(campaign)
    if summary.blocking:
        raise CampaignError("The checklist is not complete: " + "; ".join(
            f"{c.name} ({c.detail})" if c.detail else c.name for c in summary.blocking))
    if expected_recipients is not None and expected_recipients != summary.recipients:
        raise CampaignError(f"The audience changed to {summary.recipients} recipients since "
                            f"you confirmed {expected_recipients}: confirm again.")
    campaign = campaign_schedule(campaign, timezone.now(), tz_name)
    from newsletter.tasks import campaign_start_now

    def enqueue():
        try:
            campaign_start_now.delay(campaign.id)
        except Exception as error:  # broker down: the beat job starts it at its next tick
            logger.warning("campaign.start_enqueue_failed",
                           extra={"campaign_id": campaign.id, "error": str(error)})

    transaction.on_commit(enqueue)
    return campaign
