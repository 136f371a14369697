from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = _("Newsletter")

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from deliverability.intake import register_unsubscribe_token_reader
        from deliverability.signals import (
            address_suppressed,
            complaint_received,
            unsubscribe_requested,
        )
        from newsletter import links, receivers, selectors, tracking
        from newsletter.models import MailingList, Subscription
        from sending.recipients import (
            register_recipient_context_provider,
            register_stop_check,
        )

        register_recipient_context_provider(tracking.with_tracking(links.recipient_contexts))
        register_stop_check(selectors.subscriptions_not_wanted)
        register_unsubscribe_token_reader(receivers.mailto_subscription)
        unsubscribe_requested.connect(receivers.on_unsubscribe_requested,
                                      dispatch_uid="newsletter.unsubscribe_requested")
        from newsletter.engagement import subscriptions_recency
        from sending.canary import register_recency_provider

        register_recency_provider(subscriptions_recency)  # the canary's first slice
        post_delete.connect(tracking.on_subscription_deleted, sender=Subscription,
                            dispatch_uid="newsletter.tracking.forget")
        complaint_received.connect(receivers.on_complaint_received,
                                   dispatch_uid="newsletter.complaint")
        address_suppressed.connect(receivers.on_address_suppressed,
                                   dispatch_uid="newsletter.suppressed")
        for signal in (post_save, post_delete):
            signal.connect(selectors.lists_cache_clear, sender=MailingList,
                           dispatch_uid=f"newsletter.lists-cache.{signal}")
