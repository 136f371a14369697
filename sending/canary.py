"""Canary sending: a big mailing first goes to a small, engaged slice, and widens only
while the answers stay clean.

A list that went stale, a broken template or a provider that has started to
block shows in the first hundred answers; sending the other 98 % anyway turns a
small problem into a blocklisting. So a mailing above ``CANARY_MIN_RECIPIENTS``:

1. releases its first slice (``CANARY_STEPS``, cumulative percentages, at least
   ``CANARY_MIN_SLICE`` deliveries), most recently engaged or confirmed
   subscribers first (newsletter registers that order, ``register_recency_provider``);
   every other delivery waits ``queued`` without a due time ("held for the canary");
2. once the slice is answered, waits ``CANARY_SETTLE_SECONDS`` for bounce reports
   and complaints;
3. then weighs the released deliveries: hard bounces or complaints at or above the
   guardrails (``CANARY_HARD_BOUNCE_RATE``, ``CANARY_COMPLAINT_RATE``) pause the
   mailing with the figures and mail the operators; a provider whose share was
   blocked (``CANARY_BLOCK_RATE``) is held out of the next slices (its breaker
   deals with it) while the others widen; otherwise the next slice goes.

The held deliveries still age: the mailing's max age expires them like any other.
The sweeper (``deliveries_sweep``) drives it; each slice and its figures are kept
on the ``CanaryRun`` and shown in the campaign report.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from config.env import env_float, env_int, env_str
from sending.canary_models import CanaryRun
from sending.models import Delivery, DeliveryAttempt, Mailing

logger = logging.getLogger(__name__)
S = Delivery.State
HELD = "held for the canary: waits for its slice"
SENDER_WIDE_PROVIDERS = 2  # providers blocking one slice that pause the whole mailing
CHUNK = 5000

RecencyProvider = Callable[[list[int]], dict[int, float]]
_recency: RecencyProvider | None = None


def register_recency_provider(provider: RecencyProvider) -> None:
    """newsletter tells how recently each subscription engaged or confirmed (unix time)."""
    global _recency
    _recency = provider


@dataclass(frozen=True)
class CanaryConf:
    min_recipients: int
    steps: tuple[float, ...]
    min_slice: int
    settle_seconds: int
    hard_bounce_rate: float
    complaint_rate: float
    block_rate: float


def canary_conf() -> CanaryConf:
    """Read at call time (tests and benchmarks change the environment)."""
    raw = env_str("CANARY_STEPS", "2,10,25,50,100")
    try:
        steps = tuple(float(x) for x in raw.split(",") if x.strip())
    except ValueError:
        steps = ()
    if not steps or list(steps) != sorted(steps) or steps[0] <= 0 or steps[-1] != 100:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"CANARY_STEPS={raw!r}: rising percentages ending in 100")
    return CanaryConf(
        min_recipients=env_int("CANARY_MIN_RECIPIENTS", 1000, minimum=0),
        steps=steps,
        min_slice=env_int("CANARY_MIN_SLICE", 100, minimum=1),
        settle_seconds=env_int("CANARY_SETTLE_SECONDS", 1800, minimum=0),
        hard_bounce_rate=env_float("CANARY_HARD_BOUNCE_RATE", 0.03),
        complaint_rate=env_float("CANARY_COMPLAINT_RATE", 0.003),
        block_rate=env_float("CANARY_BLOCK_RATE", 0.05),
    )


# --------------------------------------------------------------------------- start
def canary_begin(mailing: Mailing, *, enabled: bool | None = None) -> CanaryRun | None:
    """Hold the ledger back and release the first slice (called by ``mailing_start``
    before the mailing sends). Idempotent: a mailing keeps its first canary."""
    found = CanaryRun.objects.filter(mailing=mailing).first()
    if found is not None:
        return found
    conf = canary_conf()
    count = Delivery.objects.filter(mailing=mailing).count()
    if enabled is False or (enabled is None and count <= conf.min_recipients):
        return None
    with transaction.atomic():
        run = CanaryRun.objects.create(mailing=mailing, steps=list(conf.steps),
                                       settle_seconds=conf.settle_seconds)
        Delivery.objects.filter(mailing=mailing, state=S.QUEUED).update(
            next_attempt_at=None, last_reply=HELD)
        _release(run, conf)
    logger.info("canary.started", extra={"mailing": mailing.id, "released": run.released})
    return run


def _held(run: CanaryRun):
    return Delivery.objects.filter(mailing_id=run.mailing_id, state=S.QUEUED,
                                   next_attempt_at__isnull=True)


def _release(run: CanaryRun, conf: CanaryConf) -> int:
    """Release deliveries up to this step's share of the providers not held."""
    mine = Delivery.objects.filter(mailing_id=run.mailing_id)
    eligible = mine.exclude(provider__in=run.held_providers)
    total = eligible.count()
    waiting = _held(run).exclude(provider__in=run.held_providers)
    out = total - waiting.count()
    share = run.steps[run.step]
    target = total if share >= 100 else min(total, max(math.ceil(total * share / 100),
                                                       conf.min_slice))
    ids = _most_engaged(waiting, target - out)
    now = timezone.now()
    for start in range(0, len(ids), CHUNK):
        Delivery.objects.filter(id__in=ids[start:start + CHUNK], state=S.QUEUED,
                                next_attempt_at__isnull=True).update(
            next_attempt_at=now, last_reply="", dispatched_at=None)
    run.released = out + len(ids)
    run.state = CanaryRun.State.SENDING
    run.settle_until = None
    run.save(update_fields=["released", "state", "settle_until"])
    return len(ids)


def _most_engaged(waiting, n: int) -> list[int]:
    """The ``n`` held deliveries whose subscribers engaged or confirmed most recently
    (ledger order among equals); bounded memory: one chunk and the top ``n`` at a time."""
    if n <= 0:
        return []

    def ranked():
        last = 0
        while True:
            rows = list(waiting.filter(id__gt=last).order_by("id")
                        .values_list("id", "subscription_id")[:CHUNK])
            if not rows:
                return
            last = rows[-1][0]
            ids = [sid for _, sid in rows if sid is not None]
            recency = _recency(ids) if (_recency is not None and ids) else {}
            for delivery_id, sid in rows:
                yield (recency.get(sid, 0.0), -delivery_id)

    return [-key[1] for key in heapq.nlargest(n, ranked())]


# --------------------------------------------------------------------------- the sweeper
def canaries_advance(now: datetime | None = None) -> int:
    """Move every running canary along; returns how many changed state."""
    now = now or timezone.now()
    changed = 0
    conf = None
    for run in CanaryRun.objects.exclude(state=CanaryRun.State.DONE).select_related("mailing"):
        mailing = run.mailing
        if mailing.state in (Mailing.State.DONE, Mailing.State.CANCELLED):
            run.state = CanaryRun.State.DONE
            run.save(update_fields=["state"])
            continue
        conf = conf or canary_conf()
        if run.state == CanaryRun.State.PAUSED:
            if mailing.state == Mailing.State.SENDING:  # the operator resumed: go on
                _widen(run, conf, {"decision": "resumed by the operator",
                                   "at": now.isoformat()})
                changed += 1
            continue
        if mailing.state != Mailing.State.SENDING:
            continue  # paused by someone else: wait with it
        if run.state == CanaryRun.State.SENDING:
            if _slice_pending(run):
                continue
            run.state = CanaryRun.State.SETTLING
            run.settle_until = now + timedelta(seconds=run.settle_seconds)
            run.save(update_fields=["state", "settle_until"])
            changed += 1
        elif run.settle_until is None or run.settle_until <= now:
            _evaluate(run, conf, now)
            changed += 1
    return changed


def _slice_pending(run: CanaryRun) -> bool:
    """Released deliveries not answered yet (a deferred one waits on its provider)."""
    return Delivery.objects.filter(mailing_id=run.mailing_id, state__in=[S.QUEUED, S.CLAIMED],
                                   next_attempt_at__isnull=False).exists()


def canary_figures(run: CanaryRun) -> dict:
    """What the released deliveries showed so far, overall and per provider."""
    from deliverability.models import BounceEvent

    released = Delivery.objects.filter(mailing_id=run.mailing_id).exclude(
        state=S.QUEUED, next_attempt_at__isnull=True)
    answered = released.filter(state__in=[S.SENT, S.BOUNCED, S.FAILED]).count()
    attempts = DeliveryAttempt.objects.filter(delivery__mailing_id=run.mailing_id)
    hard = attempts.filter(kind="hard").values("delivery_id").distinct().count()
    complaints = BounceEvent.objects.filter(mailing_id=run.mailing_id, kind="complaint").count()
    tried: dict[str, int] = defaultdict(int)
    for provider, n in (released.filter(attempts__gt=0).values_list("provider")
                        .annotate(n=Count("id")).order_by()):
        tried[provider or "unknown"] += n
    blocks: dict[str, int] = defaultdict(int)
    for provider, n in (attempts.filter(kind="block").values_list("delivery__provider")
                        .annotate(n=Count("delivery_id", distinct=True)).order_by()):
        blocks[provider or "unknown"] += n
    return {"released": released.count(), "answered": answered, "hard": hard,
            "complaints": complaints, "tried": dict(tried), "blocks": dict(blocks)}


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _evaluate(run: CanaryRun, conf: CanaryConf, now: datetime) -> None:
    figures = canary_figures(run)
    entry = {"step": run.step + 1, "share": run.steps[run.step], "at": now.isoformat(),
             **figures}
    answered = figures["answered"]
    hard_rate = _rate(figures["hard"], answered)
    complaint_rate = _rate(figures["complaints"], answered)
    held = set(run.held_providers)
    blocking = sorted(p for p, n in figures["blocks"].items()
                      if n and _rate(n, figures["tried"].get(p, n)) >= conf.block_rate)
    newly = [p for p in blocking if p not in held]
    slice_text = (f"paused by the canary after slice {run.step + 1} "
                  f"({run.steps[run.step]:g} %, {figures['released']} released): ")
    reason = ""
    if answered and (hard_rate >= conf.hard_bounce_rate or complaint_rate >= conf.complaint_rate):
        reason = (slice_text + f"{figures['hard']} hard bounces in {answered} answered "
                  f"({hard_rate:.1%}, limit {conf.hard_bounce_rate:.1%}), "
                  f"{figures['complaints']} complaints ({complaint_rate:.2%}, limit "
                  f"{conf.complaint_rate:.2%}). Clean the list or check the content and "
                  "consent, then resume to send the next slice.")
    elif len(newly) >= SENDER_WIDE_PROVIDERS:
        # Several providers refusing the same slice judge the sender, not one path
        # (as the breaker's pool-wide rule: 2 providers within the hour).
        counts = ", ".join(f"{p}: {figures['blocks'][p]}" for p in newly)
        reason = (slice_text + f"blocked by {len(newly)} providers ({counts} blocks): check "
                  "the blocklists and the sending IPs and domains before resuming.")
    if reason:
        entry["decision"] = "pause"
        run.results = [*run.results, entry]
        run.state = CanaryRun.State.PAUSED
        run.save(update_fields=["results", "state"])
        from sending.lifecycle import mailing_pause

        mailing_pause(run.mailing, reason=reason)
        _tell_operators(run.mailing, reason)
        logger.warning("canary.paused", extra={"mailing": run.mailing_id, "reason": reason})
        return
    back = sorted(p for p in held if _recovered(run, p))
    if newly:
        entry["held"] = newly
        _tell_operators(run.mailing, f"canary of mailing {run.mailing_id}: "
                        f"{', '.join(newly)} blocked the slice; their share waits while the "
                        "other providers widen (see the breaker page)")
    if back:
        entry["readmitted"] = back
    run.held_providers = sorted((held | set(newly)) - set(back))
    if not answered:
        entry["decision"] = "wait: nothing answered yet"
        run.results = [*run.results, entry]
        run.state = CanaryRun.State.SETTLING
        run.settle_until = now + timedelta(seconds=run.settle_seconds)
        run.save(update_fields=["results", "state", "settle_until", "held_providers"])
        return
    entry["decision"] = "widen"
    _widen(run, conf, entry)


def _recovered(run: CanaryRun, provider: str) -> bool:
    """A held provider comes back once its released mail went through (its breaker
    probed and reopened): nothing of it open, and its last answer not a block."""
    mine = Delivery.objects.filter(mailing_id=run.mailing_id, provider=provider)
    if mine.filter(state__in=[S.CLAIMED, S.DEFERRED]).exists() or mine.filter(
            state=S.QUEUED, next_attempt_at__isnull=False).exists():
        return False
    last = (DeliveryAttempt.objects.filter(delivery__mailing_id=run.mailing_id,
                                           delivery__provider=provider)
            .order_by("-at").values_list("kind", flat=True).first())
    return last is not None and last != "block"


def _widen(run: CanaryRun, conf: CanaryConf, entry: dict) -> None:
    last_step = len(run.steps) - 1
    if run.step < last_step:
        run.step += 1
    run.results = [*run.results, entry]
    run.save(update_fields=["results", "step", "held_providers"])
    released = _release(run, conf)
    if run.step == last_step and not released and not run.held_providers:
        run.state = CanaryRun.State.DONE
        run.save(update_fields=["state"])


def _tell_operators(mailing: Mailing, text: str) -> None:
    from sending.alerts import operator_addresses
    from sending.transactional import transactional_email_send

    subject = f"[postwarden] mailing {mailing.id} {mailing.reference}: canary".strip()
    for address in operator_addresses():
        transactional_email_send(to=address, subject=subject, purpose="alert",
                                 body_text=f"{text}\n\nMailing: {mailing}\n")


# --------------------------------------------------------------------------- reports
def canary_status(mailing: Mailing) -> dict | None:
    """The canary of a mailing for the campaign report: slices, figures, decisions."""
    run = CanaryRun.objects.filter(mailing=mailing).first()
    if run is None:
        return None
    held = _held(run).count()
    return {"state": run.state, "state_label": run.get_state_display(), "step": run.step + 1,
            "steps": run.steps, "share": run.steps[run.step], "released": run.released,
            "held": held, "held_providers": run.held_providers,
            "settle_until": run.settle_until, "settle_seconds": run.settle_seconds,
            "results": run.results}
