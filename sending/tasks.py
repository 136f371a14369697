"""Celery tasks of the sending app: thin wrappers around services (ids in, nothing out)."""

from celery import shared_task
from celery.signals import worker_process_shutdown, worker_shutdown


@shared_task(queue="transactional", ignore_result=True, acks_late=True)
def transactional_deliver_batch(email_ids: list[int]) -> dict:
    """Safe to run twice: the service only sends rows it can claim."""
    from sending.transactional import transactional_emails_deliver

    return transactional_emails_deliver(email_ids)


@shared_task(queue="transactional", ignore_result=True, acks_late=True)
def transactional_deliver(email_id: int) -> str:
    """One mail (tasks queued before batches existed)."""
    from sending.transactional import transactional_email_deliver

    return transactional_email_deliver(email_id)


@shared_task(queue="maintenance", ignore_result=True)
def transactional_retry_due() -> int:
    from sending.transactional import (
        enqueue_batches,
        transactional_email_due_ids,
        transactional_email_reap,
    )

    transactional_email_reap()
    ids = transactional_email_due_ids()
    enqueue_batches(ids)
    return len(ids)


@shared_task(name="sending.deliveries_send_batch", queue="bulk", ignore_result=True,
             acks_late=True)
def deliveries_send_batch(delivery_ids: list[int]) -> dict:
    """Safe to run twice: the service only sends rows it can claim."""
    from sending.services import deliveries_send

    return deliveries_send(delivery_ids)


@shared_task(name="sending.mailing_dispatch", queue="maintenance", ignore_result=True)
def mailing_dispatch(mailing_id: int) -> int:
    from sending.services import deliveries_dispatch

    return deliveries_dispatch(mailing_id=mailing_id)


@shared_task(name="sending.deliveries_sweep", queue="maintenance", ignore_result=True)
def deliveries_sweep() -> dict:
    """Beat: expire old waiting rows, reap dead workers' rows, dispatch due ones."""
    from sending.services import deliveries_sweep as sweep

    return sweep()


@shared_task(name="sending.daily_report", queue="maintenance", ignore_result=True)
def daily_report() -> int:
    from sending.report import send_daily_report

    return send_daily_report()


@shared_task(name="sending.log_prune", queue="maintenance", ignore_result=True)
def log_prune() -> int:
    from sending.retention import prune_attempts

    return prune_attempts()


@worker_shutdown.connect
@worker_process_shutdown.connect
def _close_sessions(**_kwargs) -> None:
    """A worker that stops closes its SMTP sessions and gives their relay slots back
    at once (a killed one's come back when their leases run out)."""
    from sending.services import reset_process_state
    from sending.transactional import close_sessions

    reset_process_state()
    close_sessions()
