from django.apps import AppConfig


class SendingConfig(AppConfig):
    name = "sending"

    def ready(self) -> None:
        # sending reacts to what deliverability announces (deliverability imports nothing
        # of ours): bounce reports mark deliveries, breaker changes and blocklist results
        # are mailed to the operators, and our identity feeds its checks.
        from deliverability.identity import register_identity_provider
        from deliverability.signals import (
            blocklist_checked,
            breaker_transitioned,
            raw_quota_reached,
        )
        from sending import (
            bounce_receivers,  # noqa: F401 - connects the bounce receiver
            checks,  # noqa: F401 - registers the relay password checks
        )
        from sending.alerts import blocklist_alert, breaker_alert, raw_quota_alert
        from sending.identity import build_identity

        register_identity_provider(build_identity)
        from deliverability.page_sections import register_breaker_page_section
        from sending.warmup import breaker_page_section

        register_breaker_page_section("warmup", breaker_page_section)
        breaker_transitioned.connect(breaker_alert, dispatch_uid="breaker-alert-mail")
        blocklist_checked.connect(blocklist_alert, dispatch_uid="blocklist-alert-mail")
        raw_quota_reached.connect(raw_quota_alert, dispatch_uid="raw-quota-alert-mail")
