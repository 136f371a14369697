"""Periodic jobs of this app (see config/celery_schedule.py)."""

from deliverability import conf

BEAT_SCHEDULE: dict = {}

if conf.BOUNCE_IMAP_HOST:  # mailbox polling only where a mailbox is configured
    BEAT_SCHEDULE["deliverability.poll-bounces"] = {
        "task": "deliverability.tasks.poll_bounces",
        "schedule": float(conf.BOUNCE_IMAP_POLL_SECONDS),
        "options": {"expires": conf.BOUNCE_IMAP_POLL_SECONDS - 1},
    }
