"""Periodic jobs of this app (see config/celery_schedule.py)."""

BEAT_SCHEDULE: dict = {}
