"""Where per-recipient data for rendering comes from, without importing newsletter.

``sending`` must not import ``newsletter`` (dependencies point one way), yet a
bulk message needs the subscriber's name and links. ``newsletter`` registers a
provider at start-up (``AppConfig.ready``) that turns subscription ids into
render contexts, in one batch per call.

A context is a plain dict::

    {
        "email": "ann@example.org",
        "subscriber": {"email": ..., "name": ..., "attributes": {...}},
        "unsubscribe_url": "https://.../u/<token>/",          # page with a button
        "one_click_url": "https://.../u/<token>/one-click/",  # RFC 8058 POST target
        "preferences_url": "https://.../p/<token>/",
        "list_id": "news.example.org",                         # List-Id value
    }
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

RecipientContextProvider = Callable[[list[int]], dict[int, dict]]

_provider: RecipientContextProvider | None = None


def register_recipient_context_provider(provider: RecipientContextProvider) -> None:
    global _provider
    _provider = provider


def recipient_contexts(subscription_ids: Iterable[int]) -> dict[int, dict]:
    """Contexts for these subscription ids (missing ids are absent from the result)."""
    if _provider is None:
        raise RuntimeError("no recipient context provider registered (is newsletter installed?)")
    return _provider(list(subscription_ids))


# --- the stop check ----------------------------------------------------------------
# newsletter registers: subscription ids -> {id: why it must not be sent} (unsubscribed,
# erased, list deleted). Asked just before sending; ids it does not name may be sent.
StopCheck = Callable[[list[int]], dict[int, str]]

_stop_check: StopCheck | None = None


def register_stop_check(check: StopCheck) -> None:
    global _stop_check
    _stop_check = check


def subscriptions_stopped(subscription_ids: Iterable[int]) -> dict[int, str]:
    """{subscription id: reason} for those that must get no more mail (one query)."""
    ids = [i for i in subscription_ids if i is not None]
    if not ids or _stop_check is None:
        return {}
    return _stop_check(ids)
