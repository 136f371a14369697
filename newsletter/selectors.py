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


def subscriptions_not_wanted(subscription_ids: list[int]) -> dict[int, str]:
    """{id: why} for the subscriptions among these that must get no more mail: not
    confirmed (unsubscribed, pending), or gone (subscriber erased, list deleted).

    The sending engine asks just before it sends (sending.recipients), one query a
    batch; the join on the list drops a subscription whose list is gone."""
    from newsletter.models import Subscription

    wanted: dict[int, str] = {}
    for start in range(0, len(subscription_ids), 1000):
        chunk = subscription_ids[start:start + 1000]
        wanted.update(Subscription.objects.filter(id__in=chunk)
                      .values_list("id", "status").filter(mailing_list__slug__isnull=False))
    confirmed = Subscription.Status.CONFIRMED
    return {sid: ("subscription gone (subscriber erased or list deleted)"
                  if sid not in wanted else f"subscription {wanted[sid]}")
            for sid in subscription_ids if wanted.get(sid) != confirmed}
