from django.apps import AppConfig


class DeliverabilityConfig(AppConfig):
    name = "deliverability"

    def ready(self) -> None:
        from deliverability.signals import breaker_transitioned, pool_blocked

        breaker_transitioned.connect(_webhook, dispatch_uid="breaker-alert-webhook")
        pool_blocked.connect(_blocklist_check, dispatch_uid="pool-blocked-blocklist-check")


def _webhook(sender, transition, **kwargs) -> None:
    from django.db import transaction

    from deliverability.conf import BREAKER_WEBHOOK_URL
    from deliverability.tasks import breaker_webhook

    if BREAKER_WEBHOOK_URL:
        transaction.on_commit(lambda: breaker_webhook.delay(transition.id))


def _blocklist_check(sender, pool, **kwargs) -> None:
    from django.db import transaction

    from deliverability.tasks import pool_blocklist_check

    transaction.on_commit(lambda: pool_blocklist_check.delay(pool))
