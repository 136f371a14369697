"""Celery tasks of the sending app: thin wrappers around services."""

from celery import shared_task


@shared_task(queue="transactional", ignore_result=True, acks_late=True)
def transactional_deliver(email_id: int) -> str:
    from sending.transactional import transactional_email_deliver

    return transactional_email_deliver(email_id)


@shared_task(queue="maintenance", ignore_result=True)
def transactional_retry_due() -> int:
    from sending.transactional import transactional_email_due_ids

    ids = transactional_email_due_ids()
    for email_id in ids:
        transactional_deliver.delay(email_id)
    return len(ids)
