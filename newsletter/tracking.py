"""Click and open tracking: signed links, rewriting at start, hits in Redis, the drain.

How a click travels:

1. ``tracking_prepare`` runs when a campaign starts (``campaign_start``). Each
   distinct ``http(s)`` link of the HTML and text parts becomes a
   ``TrackedLink`` and its ``href`` the personalisation tag
   ``{{ track.c<campaign>-<index> }}``; a pixel ``{{ track.o<campaign> }}`` is
   added when opens are tracked. Unsubscribe, one-click and preference links
   are tags (``{{ unsubscribe_url }}``...) or our own ``/u/``, ``/p/`` URLs and
   are never touched.
2. Each recipient's context carries a ``TrackLinks`` (``with_tracking``) that
   signs ``campaign.index.subscription`` on demand (``django.core.signing``
   with its own salt, so ``SECRET_KEY_FALLBACKS`` keep old mails working).
3. ``/c/<token>/`` checks the signature, finds the target among the
   campaign's ``TrackedLink`` rows (cached per process), queues one line for a
   Redis list (a background thread pushes them every ``TRACKING_FLUSH_MS``)
   and redirects. Nothing else happens in the request: no Redis round trip,
   no database write, no classification. A forged or altered token, or one
   naming no stored link, gets an error page and never a redirect.
4. ``tracking_drain`` (``newsletter.tracking_drain``; beat, every few
   seconds) moves hits from Redis to the database: judges each one human or
   machine (``tracking_rules``, the time since our relay accepted the
   message, and bursts: a scanner opens every link at once), adds them to
   ``TrackingCount`` and the unique HyperLogLogs, and, for campaigns in
   linked mode only, writes ``TrackingEvent`` rows with the subscription id.
   A batch is staged in Redis under a digest and the digest is written with
   its counts, so a crashed drain never counts twice.
5. ``tracking_events_expire`` (beat, hourly) deletes linked events past the
   retention period; counts stay.
"""

from __future__ import annotations

import atexit
import hashlib
import hmac
import html as html_lib
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone
from redis.exceptions import RedisError

from config.redis import get_redis
from newsletter import conf
from newsletter.campaign_render import Parts
from newsletter.tracking_models import (  # noqa: F401 - OPEN_INDEX is for the views
    OPEN_INDEX,
    TrackedLink,
    TrackingEvent,
)

logger = logging.getLogger(__name__)

CLICK_SALT = "newsletter.tracking.click"
OPEN_SALT = "newsletter.tracking.open"
HITS_KEY = "newsletter:tracking:hits"
PRIVACY_COUNTS = "counts"
PRIVACY_LINKED = "linked"
PIXEL_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
             b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


class TokenInvalid(Exception):
    """Forged, altered or malformed tracking token."""


# --------------------------------------------------------------------------- tokens
class _Signer(signing.Signer):
    """Django's Signer, same bytes, with the HMAC key derived once per key instead of per
    call (every recipient signs several links; every click checks one)."""

    def signature(self, value, key=None):
        key = key or self.key
        macs = self.__dict__.setdefault("_macs", {})
        mac = macs.get(key)
        if mac is None:
            derived = hashlib.sha256(f"{self.salt}signer{key}".encode()).digest()
            mac = macs[key] = hmac.new(derived, digestmod=hashlib.sha256)
        mac = mac.copy()
        mac.update(value.encode())
        return signing.b64_encode(mac.digest()).decode()


@lru_cache(maxsize=8)
def _signer(salt: str, key: str, fallbacks: tuple) -> signing.Signer:
    return _Signer(key=key, salt=salt, fallback_keys=list(fallbacks))


def _current_signer(salt: str) -> signing.Signer:
    return _signer(salt, settings.SECRET_KEY, tuple(settings.SECRET_KEY_FALLBACKS))


def _ids(token: str, salt: str, parts: int) -> tuple[int, ...]:
    try:
        value = _current_signer(salt).unsign(token)
    except signing.BadSignature:
        raise TokenInvalid("bad signature") from None
    fields = value.split(".")
    if len(fields) != parts or not all(f.isdigit() for f in fields):
        raise TokenInvalid("malformed")
    return tuple(int(f) for f in fields)


def click_token(campaign_id: int, index: int, subscription_id: int) -> str:
    return _current_signer(CLICK_SALT).sign(f"{campaign_id}.{index}.{subscription_id}")


def click_token_read(token: str) -> tuple[int, int, int]:
    """(campaign id, link index, subscription id), or TokenInvalid."""
    return _ids(token, CLICK_SALT, 3)


def open_token(campaign_id: int, subscription_id: int) -> str:
    return _current_signer(OPEN_SALT).sign(f"{campaign_id}.{subscription_id}")


def open_token_read(token: str) -> tuple[int, int]:
    return _ids(token, OPEN_SALT, 2)


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class CampaignTracking:
    clicks: bool
    opens: bool
    privacy: str


def campaign_tracking(campaign) -> CampaignTracking:
    """The campaign's own choice, else its first list's default (opens: off unless chosen)."""
    first = campaign.lists.order_by("id").first() if campaign.pk else None
    clicks = campaign.track_clicks
    if clicks is None:
        clicks = bool(first and first.track_clicks)
    privacy = campaign.tracking_privacy or (first.tracking_privacy if first else "") \
        or PRIVACY_COUNTS
    return CampaignTracking(clicks=clicks, opens=bool(campaign.track_opens), privacy=privacy)


# --------------------------------------------------------------------------- rewriting
_TAG = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_A_TAG = re.compile(r"<a\b[^>]*>", re.IGNORECASE)
_HREF = re.compile(r"""(\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_TEXT_URL = re.compile(r"""https?://[^\s<>"'()\[\]{}]+""", re.IGNORECASE)
_TRAILING = ".,;:!?"
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
PIXEL_MARK = "data-pw-pixel"


def _never_tracked(url: str) -> bool:
    """Links that must reach us untouched: unsubscribe, one-click, preferences, confirm."""
    if "{{" in url or not url.lower().startswith(("http://", "https://")):
        return True
    site = settings.SITE_URL.rstrip("/")
    if url.startswith(site + "/"):
        path = url[len(site):]
        return path.startswith(("/u/", "/p/", "/confirm/", "/c/", "/o/"))
    return False


class _Links:
    def __init__(self, campaign_id: int):
        self.campaign_id = campaign_id
        self.index: dict[str, int] = {}

    def tag(self, url: str) -> str:
        number = self.index.setdefault(url, len(self.index))
        return f"{{{{ track.c{self.campaign_id}-{number} }}}}"


def rewrite_links(campaign_id: int, html: str, text: str) -> tuple[str, str, list[str]]:
    """Both parts with tracked links as tags, and the targets in index order."""
    links = _Links(campaign_id)

    def anchor(match: re.Match) -> str:
        tag = match.group(0)
        if "data-pw-notrack" in tag.lower():
            return tag

        def href(found: re.Match) -> str:
            raw = found.group(2) if found.group(2) is not None else found.group(3)
            url = html_lib.unescape(raw).strip()
            if _never_tracked(url):
                return found.group(0)
            return f'{found.group(1)}"{links.tag(url)}"'

        return _HREF.sub(href, tag, count=1)

    new_html = _outside_tags(html, lambda chunk: _A_TAG.sub(anchor, chunk)) if html else html

    def text_url(match: re.Match) -> str:
        url = match.group(0)
        tail = ""
        while url and url[-1] in _TRAILING:
            url, tail = url[:-1], url[-1] + tail
        if _never_tracked(url):
            return match.group(0)
        return links.tag(url) + tail

    new_text = _outside_tags(text, lambda chunk: _TEXT_URL.sub(text_url, chunk))
    return new_html, new_text, list(links.index)


def _outside_tags(source: str, change) -> str:
    """Apply ``change`` to the text between personalisation tags, never inside one.

    An anchor whose href is a tag (``{{ unsubscribe_url }}``) is split here, and
    the part after the tag holds no href: it stays as it is."""
    out, position = [], 0
    for match in _TAG.finditer(source):
        out.append(change(source[position:match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(change(source[position:]))
    return "".join(out)


def add_pixel(campaign_id: int, html: str) -> str:
    pixel = (f'<img src="{{{{ track.o{campaign_id} }}}}" width="1" height="1" alt="" '
             f'{PIXEL_MARK} style="display:block;width:1px;height:1px;border:0">')
    found = list(_BODY_END.finditer(html))
    if not found:
        return html + pixel
    at = found[-1].start()
    return html[:at] + pixel + html[at:]


def tracking_prepare(campaign, parts: Parts) -> Parts:
    """At start: freeze the campaign's tracking choice and rewrite its parts (in the
    caller's transaction, so a failed start leaves no links behind)."""
    choice = campaign_tracking(campaign)
    type(campaign).objects.filter(pk=campaign.pk).update(
        track_clicks=choice.clicks, tracking_privacy=choice.privacy)
    campaign.track_clicks, campaign.tracking_privacy = choice.clicks, choice.privacy
    html, text = parts.html, parts.text
    if choice.clicks:
        html, text, targets = rewrite_links(campaign.id, html, text)
        TrackedLink.objects.bulk_create(
            [TrackedLink(campaign_id=campaign.id, index=i, url=url)
             for i, url in enumerate(targets)], ignore_conflicts=True)
    if choice.opens and html:
        html = add_pixel(campaign.id, html)
    return Parts(html=html, text=text)


# --------------------------------------------------------------------------- contexts
@lru_cache(maxsize=4)
def _url_patterns(site_url: str) -> tuple[str, str]:
    return (site_url + reverse("tracking:click", args=["__t__"]),
            site_url + reverse("tracking:open", args=["__t__"]))


class TrackLinks(dict):
    """``{{ track.c12-3 }}`` / ``{{ track.o12 }}`` for one recipient, signed when rendered.

    A dict to the template renderer (which only walks dictionaries); nothing is
    signed for mails that carry no tracked links."""

    __slots__ = ("subscription_id",)

    def __init__(self, subscription_id: int):
        super().__init__()
        self.subscription_id = subscription_id

    def get(self, key, default=None):
        if not isinstance(key, str) or len(key) < 2:
            return default
        click_at, open_at = _url_patterns(settings.SITE_URL)
        if key[0] == "c":
            campaign, _, index = key[1:].partition("-")
            if campaign.isdigit() and index.isdigit():
                return click_at.replace("__t__", click_token(int(campaign), int(index),
                                                             self.subscription_id))
        elif key[0] == "o" and key[1:].isdigit():
            return open_at.replace("__t__", open_token(int(key[1:]), self.subscription_id))
        return default


def with_tracking(provider):
    """Wrap the recipient-context provider so each context can sign tracked links."""

    def contexts(subscription_ids: list[int]) -> dict[int, dict]:
        found = provider(subscription_ids)
        for subscription_id, context in found.items():
            context["track"] = TrackLinks(subscription_id)
        return found

    return contexts


# --------------------------------------------------------------------------- the request
_targets: dict[tuple[int, int], str] = {}
_TARGETS_MAX = 20_000


def link_target(campaign_id: int, index: int) -> str | None:
    """The stored target of a tracked link (links never change once a campaign started)."""
    key = (campaign_id, index)
    url = _targets.get(key)
    if url is None:
        url = (TrackedLink.objects.filter(campaign_id=campaign_id, index=index)
               .values_list("url", flat=True).first())
        if url is None:
            return None
        if len(_targets) >= _TARGETS_MAX:
            _targets.clear()
        _targets[key] = url
    return url


def link_cache_clear() -> None:
    """Forget cached targets (tests, whose databases reuse campaign ids)."""
    _targets.clear()
    _url_patterns.cache_clear()


def _clean(value: str, limit: int) -> str:
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")[:limit]


class _HitBuffer:
    """Hits of this process, pushed to Redis by a background thread in one call per
    ``TRACKING_FLUSH_MS``: the request appends to a list and answers, never waiting for
    Redis. A crash loses at most that interval's hits; a Redis outage keeps up to
    ``BUFFER_MAX`` lines for the next try. Started lazily per process (after a fork)."""

    BUFFER_MAX = 50_000
    FLUSH_AT = 500

    def __init__(self):
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.pid = 0

    def add(self, line: str) -> None:
        if conf.TRACKING_FLUSH_MS == 0:
            self.push([line])
            return
        if self.pid != os.getpid():
            self._start()
        with self.lock:
            self.lines.append(line)
            full = len(self.lines) >= self.FLUSH_AT
        if full:
            self.wake.set()

    def _start(self) -> None:
        with self.lock:
            if self.pid == os.getpid():
                return
            self.pid = os.getpid()
            self.lines = []
            threading.Thread(target=self._run, name="tracking-hits", daemon=True).start()
            atexit.register(self.flush, at_exit=True)

    def _run(self) -> None:
        while True:
            self.wake.wait(conf.TRACKING_FLUSH_MS / 1000)
            self.wake.clear()
            self.flush()

    def flush(self, at_exit: bool = False) -> None:
        with self.lock:
            lines, self.lines = self.lines, []
        if lines and not self.push(lines, log=not at_exit):
            with self.lock:
                self.lines = (lines + self.lines)[-self.BUFFER_MAX:]

    @staticmethod
    def push(lines: list[str], log: bool = True) -> bool:
        try:
            get_redis().rpush(HITS_KEY, *lines)
            return True
        except RedisError as error:
            if log:  # (at exit the log streams may be closed already)
                logger.warning("tracking.hits_not_pushed", extra={"hits": len(lines),
                                                                  "error": str(error)})
            return False


_buffer = _HitBuffer()


def hit_record(kind: str, campaign_id: int, index: int, subscription_id: int, *,
               ip: str | None, user_agent: str) -> None:
    """Queue one hit for Redis (see ``_HitBuffer``); a Redis outage never stops the
    redirect."""
    _buffer.add(f"{kind}\t{campaign_id}\t{index}\t{subscription_id}\t{time.time():.3f}\t"
                f"{ip or ''}\t{_clean(user_agent, 400)}")


def hits_flush() -> None:
    """Push this process's buffered hits now (tests; the drain in the same process)."""
    _buffer.flush()


# --------------------------------------------------------------------------- housekeeping
def tracking_events_expire(*, now: datetime | None = None) -> int:
    """Delete hits linked to subscribers past the retention period (the counts stay)."""
    cutoff = (now or timezone.now()) - timedelta(days=conf.TRACKING_LINKED_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(TrackingEvent.objects.filter(at__lt=cutoff)
                   .values_list("id", flat=True)[:5000])
        if not ids:
            return deleted
        deleted += TrackingEvent.objects.filter(id__in=ids).delete()[0]


def tracking_forget_subscription(subscription_id: int) -> int:
    """An erased or deleted subscription leaves no linked hits behind."""
    return TrackingEvent.objects.filter(subscription_id=subscription_id).delete()[0]


def on_subscription_deleted(sender, instance, **kwargs) -> None:
    """Erasure deletes the subscriber and its subscriptions: their linked hits go too.
    A pending subscription was never mailed (the purge deletes thousands): no query."""
    if instance.status != "pending":
        tracking_forget_subscription(instance.id)
