"""The drain: hits from Redis, judged human or machine, into counts (and linked events).

Runs as a beat job (``newsletter.tracking_drain``, every few seconds) on the
maintenance queue; see ``newsletter.tracking`` for the whole path of a click.
A recipient's hits wait until they have settled (a burst is judged whole); a
batch is staged in Redis and its digest written with its counts, so a drain
that dies midway never counts anything twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import F
from redis.exceptions import RedisError

from config.redis import get_redis
from newsletter import conf
from newsletter.tracking import HITS_KEY, PRIVACY_LINKED, hits_flush
from newsletter.tracking_models import (
    TrackedLink,
    TrackingBatch,
    TrackingCount,
    TrackingEvent,
    TrackingUnique,
)
from newsletter.tracking_rules import rules

logger = logging.getLogger(__name__)

STAGED_KEY = "newsletter:tracking:staged"
LOCK_KEY = "newsletter:tracking:drain"
UNIQUE_KEY = "newsletter:tracking:unique:{kind}:{campaign}:{provider}"
DRAIN_BATCH = 10_000
SETTLE_S = 3.0       # a recipient's hits wait this long after the last one (bursts are whole)
SETTLE_MAX_S = 60.0  # ... but never longer than this


@dataclass
class Hit:
    kind: str
    campaign_id: int
    index: int
    subscription_id: int
    at: float
    ip: str
    user_agent: str
    reason: str = ""
    provider: str = ""


def _parse(line: bytes | str) -> Hit | None:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    fields = text.split("\t")
    if len(fields) != 7 or fields[0] not in ("open", "click"):
        return None
    try:
        return Hit(fields[0], int(fields[1]), int(fields[2]), int(fields[3]),
                   float(fields[4]), fields[5], fields[6])
    except ValueError:
        return None


def _ready(hits: list[tuple[bytes, Hit]], now: float) -> tuple[list, list]:
    """Split into (ready, wait): a recipient's hits wait until they have settled, so a
    burst is judged whole."""
    newest: dict[tuple, float] = {}
    oldest: dict[tuple, float] = {}
    for _, hit in hits:
        key = (hit.campaign_id, hit.subscription_id)
        newest[key] = max(newest.get(key, 0.0), hit.at)
        oldest[key] = min(oldest.get(key, hit.at), hit.at)
    ready, wait = [], []
    for raw, hit in hits:
        key = (hit.campaign_id, hit.subscription_id)
        settled = newest[key] < now - SETTLE_S or oldest[key] < now - SETTLE_MAX_S
        (ready if settled else wait).append((raw, hit))
    return ready, wait


def tracking_drain(*, now: float | None = None, batch: int = DRAIN_BATCH) -> int:
    """Beat job: judge and count the hits waiting in Redis. Returns how many were counted."""
    hits_flush()  # this process's own (a web process never drains; tests do)
    redis = get_redis()
    lock = redis.lock(LOCK_KEY, timeout=300, blocking=False)
    if not lock.acquire():
        return 0
    counted = 0
    try:
        staged = redis.get(STAGED_KEY)
        if staged is not None:  # a drain died after staging: apply it (once) first
            counted += _apply([line.encode() for line in json.loads(staged)])
            redis.delete(STAGED_KEY)
        while True:
            raw = redis.lrange(HITS_KEY, 0, batch - 1)
            if not raw:
                break
            parsed = []
            for line in raw:
                hit = _parse(line)
                if hit is None:
                    logger.warning("tracking.hit_malformed", extra={"line": line[:200]})
                else:
                    parsed.append((line, hit))
            ready, wait = _ready(parsed, now if now is not None else time.time())
            pipe = redis.pipeline(transaction=True)
            pipe.ltrim(HITS_KEY, len(raw), -1)
            if wait:
                pipe.lpush(HITS_KEY, *[line for line, _ in reversed(wait)])
            if ready:
                pipe.set(STAGED_KEY, json.dumps([line.decode("utf-8", "replace")
                                                 for line, _ in ready]))
            pipe.execute()
            if ready:
                counted += _apply([line for line, _ in ready])
                redis.delete(STAGED_KEY)
            if len(raw) < batch or not ready:
                break
    finally:
        try:
            lock.release()
        except RedisError:
            logger.debug("tracking drain lock expired")
    return counted


def _apply(lines: list[bytes]) -> int:
    """Judge and count one staged batch, once (its digest is stored with the counts)."""
    if not lines:
        return 0
    digest = hashlib.sha256(b"\n".join(lines)).hexdigest()
    if TrackingBatch.objects.filter(digest=digest).exists():
        return 0
    hits = [h for h in map(_parse, lines) if h is not None]
    from newsletter.campaign_models import Campaign

    campaigns = {c["id"]: c for c in Campaign.objects.filter(
        id__in={h.campaign_id for h in hits}).values("id", "mailing_id", "tracking_privacy")}
    hits = [h for h in hits if h.campaign_id in campaigns]
    _judge(hits, campaigns)
    counts: dict[tuple, int] = defaultdict(int)
    events = []
    for hit in hits:
        hour = datetime.fromtimestamp(hit.at, UTC).replace(minute=0, second=0, microsecond=0)
        counts[(hit.campaign_id, hit.kind, hit.index, hit.provider, hour, hit.reason)] += 1
        if campaigns[hit.campaign_id]["tracking_privacy"] == PRIVACY_LINKED:
            events.append(TrackingEvent(
                campaign_id=hit.campaign_id, subscription_id=hit.subscription_id,
                kind=hit.kind, link_index=hit.index, machine=bool(hit.reason),
                at=datetime.fromtimestamp(hit.at, UTC)))
    uniques = _uniques_add([h for h in hits if not h.reason])
    with transaction.atomic():
        TrackingBatch.objects.create(digest=digest, hits=len(hits))
        for (campaign_id, kind, index, provider, hour, reason), n in counts.items():
            updated = TrackingCount.objects.filter(
                campaign_id=campaign_id, kind=kind, link_index=index, provider=provider,
                hour=hour, machine_reason=reason).update(count=F("count") + n)
            if not updated:
                TrackingCount.objects.create(campaign_id=campaign_id, kind=kind,
                                             link_index=index, provider=provider, hour=hour,
                                             machine_reason=reason, count=n)
        TrackingEvent.objects.bulk_create(events, batch_size=2000)
        for (kind, campaign_id, provider), n in uniques.items():
            row, _ = TrackingUnique.objects.get_or_create(campaign_id=campaign_id, kind=kind,
                                                          provider=provider)
            if n > row.count:  # never below what was counted (Redis may have been reset)
                TrackingUnique.objects.filter(pk=row.pk).update(count=n)
    return len(hits)


def _judge(hits: list[Hit], campaigns: dict) -> None:
    """Set each hit's provider and machine reason (empty: human)."""
    from sending.models import Delivery

    rule_set = rules()
    sent: dict[tuple[int, int], tuple[float | None, str]] = {}
    by_campaign: dict[int, set[int]] = defaultdict(set)
    for hit in hits:
        by_campaign[hit.campaign_id].add(hit.subscription_id)
    link_counts: dict[int, int] = {}
    for campaign_id, subscription_ids in by_campaign.items():
        mailing_id = campaigns[campaign_id]["mailing_id"]
        link_counts[campaign_id] = TrackedLink.objects.filter(campaign_id=campaign_id).count()
        if mailing_id is None:
            continue
        for subscription_id, sent_at, provider in (Delivery.objects.filter(
                mailing_id=mailing_id, subscription_id__in=subscription_ids)
                .values_list("subscription_id", "sent_at", "provider")):
            sent[(campaign_id, subscription_id)] = (
                sent_at.timestamp() if sent_at else None, provider or "")
    for hit in hits:
        sent_at, hit.provider = sent.get((hit.campaign_id, hit.subscription_id), (None, ""))
        hit.reason = rule_set.judge(hit.kind, hit.user_agent, hit.ip)
        if not hit.reason and sent_at is not None and hit.at - sent_at < rule_set.prefetch_s:
            hit.reason = "prefetch"
    _judge_bursts([h for h in hits if h.kind == "click"], link_counts, rule_set)


def _judge_bursts(clicks: list[Hit], link_counts: dict[int, int], rule_set) -> None:
    """A recipient following many distinct links within a second is a link scanner."""
    by_recipient: dict[tuple, list[Hit]] = defaultdict(list)
    for hit in clicks:
        by_recipient[(hit.campaign_id, hit.subscription_id)].append(hit)
    for (campaign_id, _), group in by_recipient.items():
        needed = min(rule_set.burst_links, link_counts.get(campaign_id, 0))
        if needed < 2 or len(group) < needed:
            continue
        group.sort(key=lambda h: h.at)
        start = 0
        for end, hit in enumerate(group):
            while hit.at - group[start].at > rule_set.burst_window_s:
                start += 1
            window = group[start:end + 1]
            if len({h.index for h in window}) >= needed:
                for member in window:
                    member.reason = member.reason or "burst"


def _uniques_add(human: list[Hit]) -> dict[tuple, int]:
    """Feed human hits to the per-campaign HyperLogLogs (all and per provider); counts back."""
    if not human:
        return {}
    redis = get_redis()
    keys: dict[tuple, list[str]] = defaultdict(list)
    for hit in human:
        for provider in ("", hit.provider):
            keys[(hit.kind, hit.campaign_id, provider)].append(str(hit.subscription_id))
    pipe = redis.pipeline(transaction=False)
    names = []
    for (kind, campaign_id, provider), members in keys.items():
        name = UNIQUE_KEY.format(kind=kind, campaign=campaign_id, provider=provider)
        names.append((kind, campaign_id, provider))
        pipe.pfadd(name, *members)
        # Whoever holds Redis and an id could test it against a HyperLogLog (does PFADD
        # change it?): it lives no longer than linked hits do; the counts then stay as they
        # are in the database (a later clicker may raise them, never lower them).
        pipe.expire(name, conf.TRACKING_LINKED_RETENTION_DAYS * 86400)
        pipe.pfcount(name)
    results = pipe.execute()
    return {key: int(results[i * 3 + 2]) for i, key in enumerate(names)}
