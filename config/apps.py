from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    """Project-wide pieces: health endpoint, local-run commands, and the wiring
    between apps that must not import each other."""

    name = "config"
    label = "project"
    verbose_name = "Service"

    def ready(self) -> None:
        from deliverability.identity import register_identity_provider
        from deliverability.signals import breaker_transitioned
        from sending.alerts import breaker_alert
        from sending.identity import build_identity

        register_identity_provider(build_identity)
        breaker_transitioned.connect(breaker_alert, dispatch_uid="breaker-alert-mail")
        breaker_transitioned.connect(_webhook, dispatch_uid="breaker-alert-webhook")


def _webhook(sender, transition, **kwargs) -> None:
    from django.db import transaction

    from deliverability.conf import BREAKER_WEBHOOK_URL
    from deliverability.tasks import breaker_webhook

    if BREAKER_WEBHOOK_URL:
        transaction.on_commit(lambda: breaker_webhook.delay(transition.id))
