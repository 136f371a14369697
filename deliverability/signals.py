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
# sender=None, delivery_id: int, kind: str, reason: str, status: str, diagnostic: str,
# event_id: int — an asynchronous bounce / complaint / reply matched to a delivery by VERP
bounce_recorded = Signal()
# sender=None, pool: str, results: list[preflight.CheckResult] — after a pool-wide block
blocklist_checked = Signal()
# sender=None, subscription_id: int, source: str — a signed mailto unsubscribe token
# (RFC 2369) or an ARF opt-out report tied to a delivery; newsletter ends the subscription
unsubscribe_requested = Signal()
# sender=None, total_bytes: int, quota_bytes: int, pruned: int — raw bounce storage hit its
# quota and the oldest raw messages were pruned (their events stay)
raw_quota_reached = Signal()
