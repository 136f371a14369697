"""Periodic jobs, collected from each app's ``schedule.py``.

django-celery-beat's database scheduler copies these entries into its tables
at start-up, where operators can see and change them in the admin.
"""

from deliverability.schedule import BEAT_SCHEDULE as _deliverability
from newsletter.schedule import BEAT_SCHEDULE as _newsletter
from sending.schedule import BEAT_SCHEDULE as _sending

BEAT_SCHEDULE = {**_newsletter, **_sending, **_deliverability}
