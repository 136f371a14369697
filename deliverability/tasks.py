"""Celery tasks of deliverability: thin wrappers around services."""

from celery import shared_task


@shared_task(queue="deliverability", ignore_result=True, autoretry_for=(OSError,),
             retry_backoff=30, max_retries=5)
def breaker_webhook(transition_id: int) -> None:
    from deliverability.breaker.rules import load
    from deliverability.conf import BREAKER_WEBHOOK_URL
    from deliverability.models import BreakerTransition
    from deliverability.webhooks import post_json, transition_payload

    transition = BreakerTransition.objects.filter(id=transition_id).first()
    if transition is None or not BREAKER_WEBHOOK_URL:
        return
    post_json(BREAKER_WEBHOOK_URL,
              transition_payload(transition, load().providers.get(transition.provider)))
