"""Periodic jobs of this app (see config/celery_schedule.py)."""

from celery.schedules import crontab

from deliverability import conf

BEAT_SCHEDULE: dict = {
    # Raw bounces are kept BOUNCE_RAW_RETENTION_DAYS; their events stay.
    "deliverability.prune-raw": {
        "task": "deliverability.prune_raw",
        "schedule": crontab(hour=3, minute=45),
        "options": {"expires": 3600},
    },
}

if conf.BOUNCE_IMAP_HOST:  # mailbox polling only where a mailbox is configured
    BEAT_SCHEDULE["deliverability.poll-bounces"] = {
        "task": "deliverability.tasks.poll_bounces",
        "schedule": float(conf.BOUNCE_IMAP_POLL_SECONDS),
        "options": {"expires": conf.BOUNCE_IMAP_POLL_SECONDS - 1},
    }
