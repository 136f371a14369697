"""Celery tasks of the newsletter app: ids in, a service call, nothing out."""

from celery import shared_task


@shared_task(name="newsletter.signups_drain", queue="transactional", ignore_result=True)
def signups_drain() -> int:
    """Store the signups queued by the form (see subscription_request)."""
    from newsletter.services import signups_drain as drain

    return drain()


@shared_task(name="newsletter.signups_requeue_stale", queue="maintenance", ignore_result=True)
def signups_requeue_stale() -> int:
    """Safety net: requeue what a crashed worker held, and drain what a lost nudge left."""
    from newsletter.services.signup import signups_requeue_stale as requeue

    moved = requeue()
    signups_drain.delay()
    return moved


@shared_task(name="newsletter.confirmations_release_due", queue="transactional",
             ignore_result=True)
def confirmations_release_due() -> int:
    """Every minute: confirmation mails that waited for their address' budget."""
    from newsletter.confirm_budget import confirmations_release_due as release

    return release()


@shared_task(name="newsletter.subscriptions_purge_unconfirmed", queue="maintenance",
             ignore_result=True)
def subscriptions_purge_unconfirmed() -> int:
    from newsletter.services import subscriptions_purge_unconfirmed as purge

    return purge()


@shared_task(name="newsletter.subscriber_import_run", queue="maintenance", ignore_result=True,
             acks_late=True)
def subscriber_import_run(import_id: int) -> None:
    from newsletter.imports import subscriber_import_run as run

    run(import_id=import_id)


@shared_task(name="newsletter.subscriber_import_request_opt_in", queue="maintenance",
             ignore_result=True, acks_late=True)
def subscriber_import_request_opt_in(import_id: int) -> None:
    from newsletter.imports import subscriber_import_request_opt_in as request

    request(import_id=import_id)


@shared_task(name="newsletter.campaigns_start_due", queue="maintenance", ignore_result=True)
def campaigns_start_due() -> int:
    """Every minute: start scheduled campaigns whose time has come (a claim per campaign)."""
    from newsletter.campaigns import campaigns_start_due as start

    return start()


@shared_task(name="newsletter.tracking_drain", queue="maintenance", ignore_result=True)
def tracking_drain() -> int:
    """Every few seconds: count the clicks and opens waiting in Redis (human or machine)."""
    from newsletter.tracking_drain import tracking_drain as drain

    return drain()


@shared_task(name="newsletter.tracking_events_expire", queue="maintenance", ignore_result=True)
def tracking_events_expire() -> int:
    """Hourly: drop clicks and opens linked to subscribers past the retention period."""
    from newsletter.tracking import tracking_events_expire as expire

    return expire()


@shared_task(name="newsletter.campaign_start_now", queue="maintenance", ignore_result=True)
def campaign_start_now(campaign_id: int) -> bool:
    """Send now: start this campaign at once (a no-op if it is not due or already started)."""
    from newsletter.campaigns import campaign_start

    campaign = campaign_start(campaign_id)
    return bool(campaign is not None and campaign.mailing_id)
