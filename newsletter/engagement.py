"""How recently a subscriber showed interest, for the canary's first slice.

``sending.canary`` sends a big mailing's first slice to the most recently engaged
or confirmed subscribers (fresh consent, fewest dead addresses and complaints). We
keep no opens or clicks, so engagement here is what the consent log records: the
confirmation (double opt-in) and later visits that changed preferences or
re-subscribed. Registered at start-up (``NewsletterConfig.ready``).
"""

from __future__ import annotations

from django.db.models import Max, Q

from newsletter.models import ConsentRecord, Subscription

ENGAGING = (ConsentRecord.Event.CONFIRMATION, ConsentRecord.Event.RESUBSCRIBE)


def subscriptions_recency(subscription_ids: list[int]) -> dict[int, float]:
    """Unix time of each subscription's latest confirmation or engagement."""
    found: dict[int, float] = {}
    for sid, confirmed in (Subscription.objects.filter(id__in=subscription_ids)
                           .values_list("id", "confirmed_at")):
        if confirmed is not None:
            found[sid] = confirmed.timestamp()
    engaged = (ConsentRecord.objects.filter(subscription_id__in=subscription_ids)
               .filter(Q(event__in=ENGAGING) | Q(source=ConsentRecord.Source.PREFERENCES))
               .exclude(event=ConsentRecord.Event.UNSUBSCRIBE))
    for sid, last in (engaged.values("subscription_id").annotate(last=Max("created_at"))
                      .values_list("subscription_id", "last")):
        if last is not None:
            found[sid] = max(found.get(sid, 0.0), last.timestamp())
    return found
