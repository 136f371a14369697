"""Periodic jobs of this app (see config/celery_schedule.py)."""

BEAT_SCHEDULE: dict = {
    "sending.transactional-retry": {
        "task": "sending.tasks.transactional_retry_due",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
}
