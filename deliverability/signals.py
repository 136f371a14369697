"""What deliverability announces; other apps connect receivers (it imports none of them)."""

from django.dispatch import Signal

# sender=None, address: str, reason: str, source: str
address_suppressed = Signal()
# sender=None, address: str, feedback_type: str, delivery_id: int | None
complaint_received = Signal()
# sender=None, transition: BreakerTransition, provider_info: breaker.rules.Provider | None
breaker_transitioned = Signal()
# sender=None, pool: str, providers: list[str] — several providers blocked the pool's IPs
pool_blocked = Signal()
