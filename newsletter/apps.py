from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = _("Newsletter")

    def ready(self) -> None:
        from deliverability.signals import address_suppressed, complaint_received
        from newsletter import links, receivers
        from sending.recipients import register_recipient_context_provider

        register_recipient_context_provider(links.recipient_contexts)
        complaint_received.connect(receivers.on_complaint_received,
                                   dispatch_uid="newsletter.complaint")
        address_suppressed.connect(receivers.on_address_suppressed,
                                   dispatch_uid="newsletter.suppressed")
