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


@shared_task(queue="deliverability", ignore_result=True)
def poll_bounces() -> None:
    from deliverability.mailbox import poll_configured

    poll_configured()


@shared_task(queue="deliverability")
def reclassify_inbound(message_ids: list[int]) -> int:
    """Re-run classification and actions on stored messages (after rule changes)."""
    from deliverability.intake import reclassify
    from deliverability.models import InboundMessage

    count = 0
    for message in InboundMessage.objects.filter(pk__in=message_ids).iterator():
        reclassify(message)
        count += 1
    return count


@shared_task(name="deliverability.prune_raw", queue="maintenance", ignore_result=True)
def prune_raw() -> int:
    from deliverability.retention import prune_raw_messages

    return prune_raw_messages()


@shared_task(name="deliverability.pool_blocklist_check", queue="deliverability",
             ignore_result=True)
def pool_blocklist_check(pool: str) -> int:
    """Several providers blocked this pool: are its IPs or domains on a blocklist?"""
    from deliverability.identity import current_identity
    from deliverability.preflight import check_domain_blocklists, check_ip_blocklists
    from deliverability.resolver import DnsResolver
    from deliverability.signals import blocklist_checked

    identity, resolver = current_identity(), DnsResolver(timeout=5)
    results = []
    for relay in identity.relays:
        if relay.ip:
            results += check_ip_blocklists(resolver, relay.ip)
    for domain in identity.domains:
        results += check_domain_blocklists(resolver, domain.domain)
    blocklist_checked.send(sender=None, pool=pool, results=results)
    return len(results)
