"""The admin home's figures: lists and their growth, the last campaigns, paused providers.

Each block is built only for someone who may see it (``dashboard_for``), with one
grouped query per block, never one per row: a list of 100 000 people costs one
pass over its subscriptions, not 100 000 objects.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from newsletter.campaign_models import Campaign
from newsletter.models import MailingList, Subscription

RECENT_CAMPAIGNS = 5
GROWTH_DAYS = (7, 30)


def list_figures(now=None) -> list[dict]:
    """Per list: confirmed now, and who joined (confirmed) and left in the last 7 and 30 days."""
    now = now or timezone.now()
    S = Subscription.Status
    counts = {"confirmed": Count("id", filter=Q(status=S.CONFIRMED))}
    for days in GROWTH_DAYS:
        since = now - timedelta(days=days)
        counts[f"joined_{days}"] = Count("id", filter=Q(confirmed_at__gte=since))
        counts[f"left_{days}"] = Count("id", filter=Q(status=S.UNSUBSCRIBED,
                                                      unsubscribed_at__gte=since))
    by_list = {row.pop("mailing_list_id"): row for row in (
        Subscription.objects.filter(status__in=[S.CONFIRMED, S.UNSUBSCRIBED])
        .values("mailing_list_id").annotate(**counts).order_by())}
    empty = dict.fromkeys(counts, 0)
    rows = []
    for mailing_list in MailingList.objects.order_by("name").only("id", "name"):
        figures = by_list.get(mailing_list.id, empty)
        growth = [{"days": days, "joined": figures[f"joined_{days}"],
                   "left": figures[f"left_{days}"],
                   "net": figures[f"joined_{days}"] - figures[f"left_{days}"]}
                  for days in GROWTH_DAYS]
        rows.append({"list": mailing_list, "confirmed": figures["confirmed"], "growth": growth})
    return rows


def recent_campaigns(limit: int = RECENT_CAMPAIGNS) -> list[dict]:
    """The last campaigns with their state and, once started, how many were sent."""
    from newsletter.campaigns import campaign_state_shown
    from sending.models import Delivery

    campaigns = list(Campaign.objects.select_related("mailing")
                     .only("id", "name", "state", "scheduled_at", "started_at", "created_at",
                           "mailing__id", "mailing__recipients", "mailing__state")
                     .order_by("-created_at")[:limit])
    for campaign in campaigns:  # a finished or paused mailing shows so before the next sync
        campaign.state = campaign_state_shown(campaign)
    mailing_ids = [c.mailing_id for c in campaigns if c.mailing_id]
    sent = dict(Delivery.objects.filter(mailing_id__in=mailing_ids, state="sent")
                .values("mailing_id").annotate(n=Count("id")).values_list("mailing_id", "n")
                .order_by()) if mailing_ids else {}
    return [{"campaign": c, "recipients": c.mailing.recipients if c.mailing_id else None,
             "sent": sent.get(c.mailing_id, 0) if c.mailing_id else None} for c in campaigns]


def dashboard_for(user) -> dict:
    """The blocks ``user`` may see (see config/templates/admin/index.html)."""
    from deliverability.paused import paused_providers

    blocks: dict = {}
    if user.has_perm("newsletter.view_mailinglist"):
        blocks["lists"] = list_figures()
    if user.has_perm("newsletter.view_campaign"):
        blocks["campaigns"] = recent_campaigns()
    # Editors and authors learn that a provider holds their mail back (as in the
    # campaign report); the breaker page itself stays the operators'.
    if user.has_perm("newsletter.view_campaign") or user.has_perm(
            "deliverability.view_breakertransition"):
        blocks["paused"] = paused_providers()
        blocks["show_paused"] = True
    return blocks
