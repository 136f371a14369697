"""Periodic jobs of this app (see config/celery_schedule.py)."""

BEAT_SCHEDULE: dict = {
    "newsletter.signups-requeue-stale": {
        "task": "newsletter.signups_requeue_stale",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "newsletter.campaigns-start-due": {
        "task": "newsletter.campaigns_start_due",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "newsletter.confirmations-release-due": {
        "task": "newsletter.confirmations_release_due",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "newsletter.tracking-drain": {
        "task": "newsletter.tracking_drain",
        "schedule": 10.0,
        "options": {"expires": 9},
    },
    "newsletter.tracking-events-expire": {
        "task": "newsletter.tracking_events_expire",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
    "newsletter.purge-unconfirmed": {
        "task": "newsletter.subscriptions_purge_unconfirmed",
        "schedule": 3600.0,
        "options": {"expires": 3000},
    },
}
