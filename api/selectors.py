"""Reads of the API that a signup flood repeats: the list by slug, kept a few seconds."""

from __future__ import annotations

import threading
import time

from newsletter.models import MailingList

LIST_CACHE_SECONDS = 5.0
_lists: dict[str, tuple[float, MailingList | None]] = {}
_lock = threading.Lock()


def list_by_slug(slug: str) -> MailingList | None:
    """Any list (public or not: the token's user may sign people up to it), remembered
    per process for LIST_CACHE_SECONDS; a save or delete in this process clears it."""
    now = time.monotonic()
    cached = _lists.get(slug)
    if cached is None or now - cached[0] > LIST_CACHE_SECONDS:
        found = MailingList.objects.filter(slug=slug).first()
        with _lock:
            if len(_lists) > 1000:
                _lists.clear()
            cached = _lists[slug] = (now, found)
    return cached[1]


def lists_cache_clear(*args, **kwargs) -> None:
    with _lock:
        _lists.clear()
