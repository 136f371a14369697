"""What deliverability announces; other apps connect receivers (it imports none of them)."""

from django.dispatch import Signal

# sender=None, address: str, reason: str, source: str
address_suppressed = Signal()
# sender=None, address: str, feedback_type: str, delivery_id: int | None
complaint_received = Signal()
