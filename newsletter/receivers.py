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
