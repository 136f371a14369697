"""Periodic jobs of this app (see config/celery_schedule.py)."""

from celery.schedules import crontab

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
    # The operators' morning mail: yesterday per provider (UTC).
    "sending.daily-report": {
        "task": "sending.daily_report",
        "schedule": crontab(hour=6, minute=0),
        "options": {"expires": 3600},
    },
    # Delivery log retention (LOG_RETENTION_DAYS), pruned in batches at night.
    "sending.log-prune": {
        "task": "sending.log_prune",
        "schedule": crontab(hour=3, minute=30),
        "options": {"expires": 3600},
    },
}
