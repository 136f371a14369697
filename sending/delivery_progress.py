"""Waiting or deferred: the one definition every report and page uses.

A delivery still to go out is in one of ``Delivery.OPEN_STATES`` (queued,
claimed, deferred). For people the difference that matters is whether a
provider has been tried yet:

- **waiting**: open and never attempted (``attempts == 0``): queued for its
  turn, or held back before its first try (a paused provider, a warm-up cap,
  all relays down).
- **deferred**: open after at least one attempt: a provider answered with a
  temporary failure (RFC 5321 4yz) or the connection failed; it is retried.

Every other state is final and keeps its own name (sent, bounced, ...).
"""

from __future__ import annotations

from django.db.models import BooleanField, Case, Value, When

from sending.models import Delivery

WAITING, DEFERRED = "waiting", "deferred"
OPEN_STATES = frozenset(str(state) for state in Delivery.OPEN_STATES)


def progress(state: str, attempted: bool) -> str:
    """``waiting``, ``deferred`` or the final state itself."""
    if state in OPEN_STATES:
        return DEFERRED if attempted else WAITING
    return state


def attempted_expression() -> Case:
    """The database side of ``attempted`` for grouped counts (values().annotate())."""
    return Case(When(attempts__gt=0, then=Value(True)), default=Value(False),
                output_field=BooleanField())
