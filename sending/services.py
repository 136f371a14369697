"""Bulk sending, the public face: the life of a delivery, one module a stage.

- ``sending.ledger``: ``mailing_create``, ``mailing_start`` (fan-out: one row per recipient);
- ``sending.dispatch``: ``deliveries_dispatch``, the sweeper and ``deliveries_reap``;
- ``sending.engine``: ``deliveries_send``, the send loop of a worker;
- ``sending.outcomes``: the answers of a batch written back in bulk.

The database is the queue. ``mailing_start`` writes one ``Delivery`` per
recipient; ``deliveries_dispatch`` nudges workers with batches of ids; a worker
(``deliveries_send``) claims the rows it can with a conditional update, sends
them over reused SMTP sessions and writes the answers back in bulk.

Crash safety. Before each message the worker records, in one Redis call
(``sending.throttle.Journal``), the answer to the previous message and the id
now in flight. The rows stay ``claimed`` by the worker's token until their
answers are written. If the worker dies, ``deliveries_reap`` (beat) finds its
rows once the claim lease has passed: journalled answers are applied, the one
in-flight row becomes ``review`` (possibly sent, never resent blindly) and the
rest go back to ``queued``. A worker never sends after its lease, so the
reaper never races a live worker. Should Redis lose the journal of a dead
worker, all its claimed rows go to ``review``.
"""

from sending.dispatch import (
    deliveries_dispatch,
    deliveries_expire,
    deliveries_reap,
    deliveries_sweep,
    mailings_finish,
)
from sending.engine import (
    ALL_BUSY,
    _prepare,
    address_stop_reason,
    breaker_pool,
    deliveries_send,
    deliveries_stopped,
    reset_process_state,
)
from sending.ledger import iter_sql, ledger_build, ledger_build_sql, mailing_create, mailing_start

__all__ = [
    "ALL_BUSY", "_prepare", "address_stop_reason", "breaker_pool", "deliveries_dispatch",
    "deliveries_expire", "deliveries_reap", "deliveries_send", "deliveries_stopped",
    "deliveries_sweep", "iter_sql", "ledger_build", "ledger_build_sql", "mailing_create",
    "mailing_start", "mailings_finish", "reset_process_state",
]
