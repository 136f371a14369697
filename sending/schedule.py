"""Periodic jobs of this app (see config/celery_schedule.py)."""

BEAT_SCHEDULE: dict = {
    "sending.transactional-retry": {
        "task": "sending.tasks.transactional_retry_due",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Reaper + sweeper: returns rows of dead workers, re-dispatches due and
    # deferred deliveries, expires too-old ones, finishes mailings.
    "sending.deliveries-sweep": {
        "task": "sending.deliveries_sweep",
        "schedule": 15.0,
        "options": {"expires": 14},
    },
}
