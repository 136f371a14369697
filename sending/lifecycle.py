"""Pause, resume and cancel a mailing; guardrails that pause a bad one by themselves.

A paused mailing keeps its ledger: workers stop claiming its deliveries (a
batch already claimed finishes), and resuming picks up exactly where it was,
so nothing is sent twice and nothing is lost. Cancelling marks every delivery
not yet sent ``cancelled``.

Guardrails (checked by the sweeper while a mailing sends): after a minimum
sample, a hard-bounce rate above ``GUARDRAIL_HARD_BOUNCE_RATE`` (a bad list) or
a complaint rate above ``GUARDRAIL_COMPLAINT_RATE`` (Gmail's 0.3 % line)
pauses the mailing with the reason, for the editor to see.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from config.env import env_float, env_int
from deliverability.models import BounceEvent
from sending.models import Delivery, DeliveryAttempt, Mailing

logger = logging.getLogger(__name__)
S = Delivery.State


class LifecycleError(ValueError):
    """The mailing is not in a state that allows this."""


def mailing_pause(mailing: Mailing, *, reason: str = "") -> Mailing:
    changed = Mailing.objects.filter(id=mailing.id, state=Mailing.State.SENDING).update(
        state=Mailing.State.PAUSED, pause_reason=reason[:2000])
    mailing.refresh_from_db()
    if not changed and mailing.state != Mailing.State.PAUSED:
        raise LifecycleError(f"a {mailing.state} mailing cannot be paused")
    return mailing


def mailing_resume(mailing: Mailing) -> Mailing:
    changed = Mailing.objects.filter(id=mailing.id, state=Mailing.State.PAUSED).update(
        state=Mailing.State.SENDING, pause_reason="")
    mailing.refresh_from_db()
    if not changed and mailing.state != Mailing.State.SENDING:
        raise LifecycleError(f"a {mailing.state} mailing cannot be resumed")
    if changed:
        from sending.tasks import mailing_dispatch

        transaction.on_commit(lambda: mailing_dispatch.delay(mailing.id))
    return mailing


def mailing_cancel(mailing: Mailing) -> Mailing:
    """Stop for good: deliveries not sent yet become ``cancelled``."""
    with transaction.atomic():
        changed = Mailing.objects.filter(
            id=mailing.id, state__in=[Mailing.State.DRAFT, Mailing.State.BUILDING,
                                      Mailing.State.SENDING, Mailing.State.PAUSED],
        ).update(state=Mailing.State.CANCELLED, finished_at=timezone.now())
        if changed:
            Delivery.objects.filter(mailing=mailing, state__in=[S.QUEUED, S.DEFERRED]).update(
                state=S.CANCELLED, last_reply="mailing cancelled")
    mailing.refresh_from_db()
    if not changed and mailing.state != Mailing.State.CANCELLED:
        raise LifecycleError(f"a {mailing.state} mailing cannot be cancelled")
    return mailing


def guardrail_settings() -> dict:
    return {
        "min_sample": env_int("GUARDRAIL_MIN_SAMPLE", 1000, minimum=1),
        "hard_bounce_rate": env_float("GUARDRAIL_HARD_BOUNCE_RATE", 0.05),
        "complaint_rate": env_float("GUARDRAIL_COMPLAINT_RATE", 0.003),
    }


def guardrail_reason(mailing: Mailing) -> str | None:
    """Why this mailing should pause itself now, or None."""
    limits = guardrail_settings()
    answered = Delivery.objects.filter(mailing=mailing, state__in=[
        S.SENT, S.BOUNCED, S.FAILED]).count()
    if answered < limits["min_sample"]:
        return None
    hard = (DeliveryAttempt.objects.filter(delivery__mailing=mailing, kind="hard")
            .values("delivery_id").distinct().count())
    if hard / answered > limits["hard_bounce_rate"]:
        return (f"paused by the guardrail: {hard} hard bounces in {answered} deliveries "
                f"({hard / answered:.1%}, limit {limits['hard_bounce_rate']:.1%}): the list "
                "holds many dead addresses; clean it before resuming")
    # One per delivery, and only complaints that acted (ARF tied to a delivery of ours).
    complaints = (BounceEvent.objects.filter(mailing_id=mailing.id, kind="complaint",
                                             action=BounceEvent.Action.COMPLAINT,
                                             delivery_id__isnull=False)
                  .values("delivery_id").distinct().count())
    sent = Delivery.objects.filter(mailing=mailing, state=S.SENT).count() or 1
    if complaints / sent > limits["complaint_rate"]:
        return (f"paused by the guardrail: {complaints} complaints for {sent} messages "
                f"({complaints / sent:.2%}, limit {limits['complaint_rate']:.2%}): recipients "
                "mark it as spam; check consent and content before resuming")
    return None


def mailings_guard() -> int:
    """Pause every sending mailing that crossed a guardrail; returns how many."""
    paused = 0
    for mailing in Mailing.objects.filter(state=Mailing.State.SENDING):
        reason = guardrail_reason(mailing)
        if reason:
            mailing_pause(mailing, reason=reason)
            logger.warning("mailing %s: %s", mailing.id, reason)
            paused += 1
    return paused
