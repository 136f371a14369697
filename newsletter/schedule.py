"""Periodic jobs of this app (see config/celery_schedule.py)."""

BEAT_SCHEDULE: dict = {
    "newsletter.purge-unconfirmed": {
        "task": "newsletter.subscriptions_purge_unconfirmed",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
