"""The numbers of one campaign, from the sending ledger and the deliverability events.

Read-only (a selector). Counted live from ``Delivery`` rows, their
``DeliveryAttempt`` answers (bounces during the SMTP session), ``BounceEvent``
rows (bounces and complaints that arrived later, matched by VERP) and the
consent log (unsubscribes by recipients of this mailing since it started).
Messages still to go are *waiting* (not tried yet) or *deferred* (tried, retried),
as ``sending.delivery_progress`` defines them, in the summary and every row alike;
``paused`` lists the providers holding them back (``deliverability.paused``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count

from deliverability.models import BounceEvent
from newsletter.campaign_models import Campaign
from newsletter.models import ConsentRecord
from newsletter.tracking_report import TrackingReport, tracking_report
from sending.delivery_progress import DEFERRED, WAITING, attempted_expression, progress
from sending.models import Delivery, DeliveryAttempt

BOUNCE_KINDS = ("hard", "soft", "block")
STATES = ("queued", "claimed", "sent", "deferred", "bounced", "failed", "expired",
          "suppressed", "skipped", "review", "cancelled")


@dataclass
class ProviderRow:
    provider: str
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    bounces: dict[str, int] = field(default_factory=lambda: dict.fromkeys(BOUNCE_KINDS, 0))
    complaints: int = 0
    clickers: int = 0  # distinct human clickers (click tracking)
    # Open deliveries split by sending.delivery_progress: not yet tried / tried, retried.
    progress: dict[str, int] = field(default_factory=lambda: {WAITING: 0, DEFERRED: 0})

    @property
    def name(self) -> str:
        from deliverability.providers import provider_name

        return provider_name(self.provider)

    @property
    def total(self) -> int:
        return sum(self.states.values())

    @property
    def waiting(self) -> int:
        return self.progress[WAITING]

    @property
    def deferred(self) -> int:
        return self.progress[DEFERRED]

    @property
    def open(self) -> int:
        return self.waiting + self.deferred

    @property
    def click_through(self) -> str:
        """Distinct human clickers per message sent, as a percentage."""
        sent = self.states.get("sent", 0)
        return f"{100 * self.clickers / sent:.1f} %" if sent else "-"


@dataclass
class CampaignReport:
    audience: int
    started: bool
    states: dict[str, int]
    bounces: dict[str, int]
    complaints: int
    unsubscribes: int
    providers: list[ProviderRow]
    pause_reason: str = ""
    warmup: list[dict] = field(default_factory=list)  # sending.warmup.plan_rows_for_mailing
    canary: dict | None = None  # sending.canary.canary_status
    tracking: TrackingReport | None = None
    progress: dict[str, int] = field(default_factory=lambda: {WAITING: 0, DEFERRED: 0})
    # deliverability.paused: providers holding this campaign's mail (None: state unknown)
    paused: list | None = field(default_factory=list)

    @property
    def warmup_section(self) -> dict:
        return {"title": "Warm-up plans this campaign sends under", "rows": self.warmup}

    @property
    def click_through(self) -> str:
        if self.tracking is None or not self.sent:
            return "-"
        return f"{100 * self.tracking.unique_clickers / self.sent:.1f} %"

    @property
    def sent(self) -> int:
        return self.states["sent"]

    @property
    def waiting(self) -> int:
        """Not tried yet (sending.delivery_progress)."""
        return self.progress[WAITING]

    @property
    def deferred(self) -> int:
        """Tried, a temporary failure: retried (sending.delivery_progress)."""
        return self.progress[DEFERRED]

    @property
    def open(self) -> int:
        return self.waiting + self.deferred

    @property
    def bounced(self) -> int:
        return sum(self.bounces.values())

    @property
    def percent_done(self) -> int:
        if not self.audience:
            return 100 if self.started else 0
        return min(100, round(100 * (self.audience - self.open) / self.audience))


def campaign_report(campaign: Campaign) -> CampaignReport:
    from newsletter.campaigns import campaign_audience_size

    mailing = campaign.mailing
    if mailing is None:
        return CampaignReport(audience=campaign_audience_size(campaign) if campaign.pk else 0,
                              started=False, states=dict.fromkeys(STATES, 0),
                              bounces=dict.fromkeys(BOUNCE_KINDS, 0), complaints=0,
                              unsubscribes=0, providers=[], paused=_paused(campaign, None))
    rows: dict[str, ProviderRow] = {}

    def row(provider: str) -> ProviderRow:
        provider = provider or "unknown"
        if provider not in rows:
            rows[provider] = ProviderRow(provider)
        return rows[provider]

    states = dict.fromkeys(STATES, 0)
    totals = {WAITING: 0, DEFERRED: 0}
    for provider, state, attempted, n in (
            Delivery.objects.filter(mailing=mailing)
            .values_list("provider", "state", attempted_expression())
            .annotate(n=Count("id")).order_by()):
        states[state] = states.get(state, 0) + n
        row(provider).states[state] = row(provider).states.get(state, 0) + n
        bucket = progress(state, attempted)
        if bucket in totals:
            totals[bucket] += n
            row(provider).progress[bucket] += n

    # A delivery counts once per kind, whether refused in the session or bounced later.
    seen: dict[str, set] = defaultdict(set)
    for delivery_id, provider, kind in (DeliveryAttempt.objects
                                        .filter(delivery__mailing=mailing, kind__in=BOUNCE_KINDS)
                                        .values_list("delivery_id", "delivery__provider", "kind")
                                        .distinct()):
        if delivery_id not in seen[kind]:
            seen[kind].add(delivery_id)
            row(provider).bounces[kind] += 1
    complaints = 0
    for delivery_id, provider, kind in (BounceEvent.objects.filter(mailing_id=mailing.id)
                                        .values_list("delivery_id", "provider", "kind")):
        if kind == "complaint":
            complaints += 1
            row(provider).complaints += 1
        elif kind in BOUNCE_KINDS and (delivery_id is None or delivery_id not in seen[kind]):
            if delivery_id is not None:
                seen[kind].add(delivery_id)
            row(provider).bounces[kind] += 1
    bounces = {kind: sum(r.bounces[kind] for r in rows.values()) for kind in BOUNCE_KINDS}

    subscriptions = Delivery.objects.filter(mailing=mailing, subscription_id__isnull=False,
                                            state="sent").values("subscription_id")
    unsubscribes = 0
    if mailing.started_at:
        unsubscribes = (ConsentRecord.objects
                        .filter(event=ConsentRecord.Event.UNSUBSCRIBE,
                                created_at__gte=mailing.started_at,
                                subscription_id__in=subscriptions)
                        .values("subscription_id").distinct().count())
    engagement = tracking_report(campaign, mailing.started_at)
    for provider, clickers in engagement.clickers_by_provider.items():
        row(provider).clickers = clickers
    providers = sorted(rows.values(), key=lambda r: (-r.total, r.provider))
    return CampaignReport(audience=mailing.recipients, started=True, states=states,
                          bounces=bounces, complaints=complaints, unsubscribes=unsubscribes,
                          providers=providers, pause_reason=mailing.pause_reason,
                          warmup=_warmup_rows(mailing), canary=_canary(mailing),
                          tracking=engagement, progress=totals,
                          paused=_paused(campaign, {r.provider: r.open for r in providers
                                                    if r.open}))


def _paused(campaign: Campaign, open_by_provider: dict[str, int] | None) -> list | None:
    """Providers holding this campaign's mail: before the start every one paused for its
    pool (its mail would wait), afterwards those with messages still to go."""
    from deliverability.paused import paused_providers

    pool = campaign.mailing.pool if campaign.mailing_id else campaign.pool
    if open_by_provider is not None and not open_by_provider:
        return []  # nothing left to send: nothing can be held
    return paused_providers(pool=pool.name if pool else "bulk",
                            open_by_provider=open_by_provider)


def _warmup_rows(mailing) -> list[dict]:
    from sending.warmup import plan_rows_for_mailing

    return plan_rows_for_mailing(mailing)


def _canary(mailing) -> dict | None:
    from sending.canary import canary_status

    return canary_status(mailing)
