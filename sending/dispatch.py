"""Dispatch, the sweeper and the reaper: batches of ids to workers, expiry, finished
mailings, and the rows a dead worker left claimed (see ``sending.services``)."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from config.redis import get_redis
from sending import conf as sending_conf
from sending import warmup
from sending.canary import canaries_advance
from sending.models import Delivery, Mailing
from sending.outcomes import _apply_outcomes
from sending.throttle import journal_keys, read_journal

logger = logging.getLogger(__name__)
S = Delivery.State

DISPATCH_PAGE = 10_000


# --------------------------------------------------------------------------- dispatch
def deliveries_dispatch(*, mailing_id: int | None = None) -> int:
    """Enqueue batches of due, undispatched deliveries grouped by provider; return #batches."""
    from sending.tasks import deliveries_send_batch

    conf = sending_conf.get()
    now = timezone.now()
    stale = now - timedelta(seconds=conf.redispatch_s)
    due = Delivery.objects.filter(
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale),
        state__in=[S.QUEUED, S.DEFERRED], next_attempt_at__lte=now,
        mailing__state=Mailing.State.SENDING,
    )
    if mailing_id is not None:
        due = due.filter(mailing_id=mailing_id)
    last = 0
    batches = 0
    while True:
        page = list(due.filter(id__gt=last).order_by("id")
                    .values_list("id", "mailing_id", "provider")[:DISPATCH_PAGE])
        if not page:
            return batches
        first, last = page[0][0], page[-1][0]
        due.filter(id__gte=first, id__lte=last).update(dispatched_at=now)
        groups: dict[tuple, list[int]] = defaultdict(list)
        for delivery_id, mailing, provider in page:
            groups[(mailing, provider)].append(delivery_id)
        for ids in groups.values():
            for start in range(0, len(ids), conf.batch_size):
                deliveries_send_batch.delay(ids[start:start + conf.batch_size])
                batches += 1


def deliveries_sweep() -> dict:
    """Beat job: expire, reap, dispatch what is due, finish mailings with nothing open."""
    from sending.lifecycle import mailings_guard

    result = {"expired": deliveries_expire(), "reaped": deliveries_reap(),
              "guarded": mailings_guard(), "warmup": warmup.warmup_plans_evaluate(),
              "canary": canaries_advance()}
    result["batches"] = deliveries_dispatch()
    result["finished"] = mailings_finish()
    return result


def deliveries_expire() -> int:
    """Waiting deliveries older than their mailing's max age: ``expired`` (not a bounce)."""
    now = timezone.now()
    total = 0
    # A paused mailing still ages: a newsletter never arrives days late.
    for mailing in Mailing.objects.filter(state__in=[Mailing.State.SENDING,
                                                     Mailing.State.PAUSED],
                                          started_at__isnull=False):
        if mailing.started_at + timedelta(hours=mailing.max_age_hours) <= now:
            total += Delivery.objects.filter(mailing=mailing,
                                             state__in=[S.QUEUED, S.DEFERRED]).update(
                state=S.EXPIRED, last_reply=f"not sent within {mailing.max_age_hours} h")
    return total


def mailings_finish() -> int:
    finished = 0
    for mailing in Mailing.objects.filter(state=Mailing.State.SENDING):
        if not Delivery.objects.filter(mailing=mailing, state__in=Delivery.OPEN_STATES).exists():
            finished += Mailing.objects.filter(id=mailing.id, state=Mailing.State.SENDING).update(
                state=Mailing.State.DONE, finished_at=timezone.now())
    return finished


# --------------------------------------------------------------------------- reaper
def deliveries_reap(*, now: datetime | None = None) -> int:
    """Return rows of workers whose claim lease has passed; the in-flight one to review."""
    conf = sending_conf.get()
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=conf.claim_lease_s)
    tokens = set(Delivery.objects.filter(state=S.CLAIMED, claimed_at__lt=cutoff)
                 .values_list("claimed_by", flat=True))
    if not tokens:
        return 0
    try:
        redis = get_redis()
        journals = {token: read_journal(redis, token) for token in tokens}
    except RedisError as error:
        logger.warning("reap.redis_unavailable", extra={"error": str(error)})
        return 0
    reaped = 0
    for token, (meta, outcomes) in journals.items():
        rows = Delivery.objects.filter(claimed_by=token, state=S.CLAIMED)
        if meta is None:
            reaped += rows.update(
                state=S.REVIEW,
                last_reply="possibly sent: worker died and its journal was lost")
            logger.error("reap.journal_lost", extra={"token": token})
        else:
            _apply_outcomes(token, outcomes)
            in_flight = meta.get("cur")
            if in_flight:
                reaped += rows.filter(id=int(in_flight)).update(
                    state=S.REVIEW,
                    last_reply="possibly sent: worker died while this message was in flight")
            reaped += rows.update(state=S.QUEUED, claimed_by="", dispatched_at=None,
                                  next_attempt_at=now)
        redis.delete(*journal_keys(token))
    return reaped
