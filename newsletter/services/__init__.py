"""Service functions of the newsletter app (writes); other apps call these."""

from newsletter.services.consent import Client, consent_text_current, consent_text_for
from newsletter.services.privacy import (
    privacy_link_send,
    subscriber_erase,
    subscriber_export_data,
    subscriber_preferences_update,
)
from newsletter.services.signup import (
    SignupOutcome,
    confirmation_mail_send,
    signup_process,
    signups_drain,
    subscription_create,
    subscription_request,
)
from newsletter.services.subscriptions import (
    ConfirmOutcome,
    subscription_confirm,
    subscription_unsubscribe,
    subscriptions_purge_unconfirmed,
    subscriptions_unsubscribe_address,
)

__all__ = [
    "Client",
    "ConfirmOutcome",
    "SignupOutcome",
    "confirmation_mail_send",
    "consent_text_current",
    "consent_text_for",
    "privacy_link_send",
    "signup_process",
    "signups_drain",
    "subscriber_erase",
    "subscriber_export_data",
    "subscriber_preferences_update",
    "subscription_confirm",
    "subscription_create",
    "subscription_request",
    "subscription_unsubscribe",
    "subscriptions_purge_unconfirmed",
    "subscriptions_unsubscribe_address",
]
