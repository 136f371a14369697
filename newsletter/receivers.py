"""Reactions to what deliverability announces (it imports nothing of ours)."""

from __future__ import annotations

from newsletter.models import ConsentRecord

_UNSUBSCRIBING_REASONS = {"complaint", "unsubscribed"}


def on_complaint_received(sender, *, address: str, feedback_type: str = "", **kwargs) -> None:
    """A spam complaint unsubscribes the address from every list."""
    from newsletter.services import subscriptions_unsubscribe_address

    subscriptions_unsubscribe_address(address=address, source=ConsentRecord.Source.COMPLAINT,
                                      detail=f"complaint: {feedback_type}"[:400])


def on_address_suppressed(sender, *, address: str, reason: str = "", **kwargs) -> None:
    """A suppression for a complaint (or an unsubscribe elsewhere) unsubscribes too."""
    if reason not in _UNSUBSCRIBING_REASONS:
        return
    from newsletter.services import subscriptions_unsubscribe_address

    source = (ConsentRecord.Source.COMPLAINT if reason == "complaint"
              else ConsentRecord.Source.SYSTEM)
    subscriptions_unsubscribe_address(address=address, source=source,
                                      detail=f"suppressed: {reason}")


def on_unsubscribe_requested(sender, *, subscription_id: int, source: str = "",
                             **kwargs) -> None:
    """A signed mailto unsubscribe token (or an ARF opt-out tied to a delivery) ends
    that one subscription; the sender's From: is never consulted."""
    from newsletter.services import Client, subscription_unsubscribe

    subscription_unsubscribe(subscription_id=subscription_id,
                             client=Client(source=ConsentRecord.Source.SYSTEM),
                             detail=f"unsubscribe by mail (RFC 2369), {source}"[:400])


def mailto_subscription(token: str) -> int | None:
    """The subscription a mailto unsubscribe token names; None when forged."""
    from newsletter.tokens import TokenInvalid, unsubscribe_mailto_token_read

    try:
        return unsubscribe_mailto_token_read(token)
    except TokenInvalid:
        return None
