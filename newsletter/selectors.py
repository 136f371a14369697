"""Reads of the newsletter app."""

from __future__ import annotations

import threading
import time

from newsletter.models import MailingList

LIST_CACHE_SECONDS = 5.0
_lists: dict[str, tuple[float, MailingList | None]] = {}
_lock = threading.Lock()


def public_list_by_slug(slug: str) -> MailingList | None:
    """The public list with this slug, remembered for a few seconds per process.

    A signup flood then costs no database query for the list. A change saved in
    this process is seen at once (``lists_cache_clear`` runs on save and
    delete); other processes see it within LIST_CACHE_SECONDS.
    """
    now = time.monotonic()
    cached = _lists.get(slug)
    if cached is None or now - cached[0] > LIST_CACHE_SECONDS:
        found = MailingList.objects.filter(slug=slug, public=True).first()
        with _lock:
            if len(_lists) > 1000:
                _lists.clear()
            cached = _lists[slug] = (now, found)
    return cached[1]


def lists_cache_clear(*args, **kwargs) -> None:
    with _lock:
        _lists.clear()
