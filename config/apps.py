from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    """Project-wide pieces: health endpoint, local-run commands, and the wiring
    between apps that must not import each other."""

    name = "config"
    label = "project"
    verbose_name = "Service"

    def ready(self) -> None:
        from deliverability.identity import register_identity_provider
        from deliverability.signals import blocklist_checked, breaker_transitioned, pool_blocked
        from sending.alerts import blocklist_alert, breaker_alert
        from sending.identity import build_identity

        register_identity_provider(build_identity)
        breaker_transitioned.connect(breaker_alert, dispatch_uid="breaker-alert-mail")
        breaker_transitioned.connect(_webhook, dispatch_uid="breaker-alert-webhook")
        pool_blocked.connect(_blocklist_check, dispatch_uid="pool-blocked-blocklist-check")
        blocklist_checked.connect(blocklist_alert, dispatch_uid="blocklist-alert-mail")


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
