"""The content check before sending: the mail as a subscriber gets it, judged.

``subscriber_message`` builds the complete message the sending engine would
send to the campaign's first recipient (a sample reader when there is none):
tracked links and pixel as they will be, every header (List-Unsubscribe,
List-Id, Feedback-ID, X-PW-Delivery), DKIM-signed with the domain's keys, and
the Return-Path the receiving server adds. ``content_checks`` gives the
checklist lines:

- always, without network: text against images (SpamAssassin's HTML_IMAGE_ONLY
  rules) and the size of the HTML (Gmail clips);
- with SPAMD_URL set: SpamAssassin's score of that message, each rule hit in
  plain words. Cached per content for an hour (a failure for a minute), so the
  change page asks spamd once per edit.

None of these block: a local SpamAssassin is one filter with its own rule
version and threshold, and receiving sites weigh more (reputation, engagement);
a score at or over the threshold is a loud warning for the editor to act on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from email.utils import formataddr
from html.parser import HTMLParser

from newsletter import conf
from newsletter.campaign_models import Campaign
from newsletter.campaigns import (
    SAMPLE_CONTEXT,
    Check,
    campaign_audience,
    campaign_errors,
    campaign_parts,
    campaign_sender,
)
from newsletter.spam_score import SpamdError, SpamScore, plain_words, spamd_score

logger = logging.getLogger(__name__)
CACHE_SECONDS = 3600
FAILURE_CACHE_SECONDS = 60
CACHE_VERSION = 1

# SpamAssassin 4.0 rules/20_html_tests.cf: HTML_IMAGE_ONLY_04 ... _32 fire when the HTML has
# an <img> and is 0-3,200 long (HTMLEval html_image_only; Mail::SpamAssassin::HTML adds
# the length of the whole decoded HTML source, layout and markup included, though the
# rules' descriptions say "bytes of words"), scored up to 2.8 points in 50_scores.cf
# (HTML_IMAGE_ONLY_24 and _28: 2.799) of the 5.0 that mark spam by default
# (required_score, Mail::SpamAssassin::Conf).
IMAGE_ONLY_MAX_HTML_BYTES = 3200
IMAGE_ONLY_MAX_POINTS = 2.8
# HTML_IMAGE_RATIO_02 ... _08: non-blank characters of the rendered text / image area (px^2)
# up to 0.008 (Mail::SpamAssassin::Message::Node non_space_len).
IMAGE_RATIO_LOW = 0.008
# Gmail shows "[Message clipped]" past about 102 KB of the HTML as sent (encoded):
# "everybody advertises 102KB as the HTML limit", measured ~105 KB (Al Iverson, Spam
# Resource, "What is Gmail clipping and what to do about it", January 2022).
GMAIL_CLIP_BYTES = 102 * 1024


# --------------------------------------------------------------------------- the message
def _context(campaign: Campaign) -> dict:
    """The first recipient's render context (as the engine gets it), else the sample's."""
    from newsletter.tracking import TrackLinks
    from sending.recipients import recipient_contexts

    if campaign.pk:
        first = campaign_audience(campaign).order_by("id").values_list("id", flat=True).first()
        if first is not None:
            try:
                found = recipient_contexts([first]).get(first)
            except RuntimeError:
                found = None
            if found:
                return found
    return {**SAMPLE_CONTEXT, "track": TrackLinks(0)}


def _parts(campaign: Campaign) -> tuple[str, str]:
    """HTML and text with links and pixel as ``tracking_prepare`` will make them (nothing
    is stored: the links are only rendered)."""
    from newsletter.tracking import add_pixel, campaign_tracking, rewrite_links

    parts = campaign_parts(campaign)
    html, text = parts.html, parts.text
    choice = campaign_tracking(campaign)
    if choice.clicks:
        html, text, _ = rewrite_links(campaign.pk or 0, html, text)
    if choice.opens and html:
        html = add_pixel(campaign.pk or 0, html)
    return html, text


@dataclass(frozen=True)
class Message:
    content_key: str  # what the verdict depends on, for the cache
    signed: bytes    # as the receiving server gets it
    html: bytes      # the HTML part as sent (encoded)
    html_source: str


def subscriber_message(campaign: Campaign) -> Message:
    """The campaign's message to its first recipient, as the sending engine builds it."""
    from deliverability import verp
    from newsletter import links
    from sending import conf as sending_conf
    from sending import dkim
    from sending.compose import Composer
    from sending.engine import feedback_id
    from sending.models import RelayPool
    from sending.render import compile_template

    settings = sending_conf.get()
    name, address, reply_to = campaign_sender(campaign)
    first = campaign.lists.order_by("id").first() if campaign.pk else None
    pool = campaign.pool.name if campaign.pool_id else RelayPool.Purpose.BULK.value
    html, text = _parts(campaign)
    composer_args = {
        "from_email": formataddr((name, address)) if name else address,
        "subject": campaign.subject, "reply_to": reply_to,
        "list_id": links.list_id(first) if first else "",
        "feedback_id": feedback_id(0, pool, settings.feedback_id_sender)}
    composer = Composer(mailing_id=0, text=text, html=html, **composer_args)
    context = _context(campaign)
    token = verp.token(0)
    data = composer.compose(context, to=context.get("email", "reader@example.org"),
                            message_id=composer.message_id(0), delivery_token=token)
    keys = dkim.keys_for(composer.from_domain, settings.dkim_key_dir,
                         (settings.dkim_selector, settings.dkim_ed25519_selector))
    # RFC 5321 4.4: the receiving server records the envelope sender as Return-Path.
    signed = (f"Return-Path: <{verp.encode(0, settings.bounce_domain)}>\r\n".encode()
              + dkim.sign(data, keys))
    # What the verdict depends on: the templates and who they are rendered for (the
    # rendering itself has a Date and timestamped tokens that change every second).
    key = json.dumps([composer_args, html, text, context.get("email"),
                      [(k.domain.decode(), k.selector.decode()) for k in keys]])
    rendered = compile_template(html, html=True).render(context) if html else ""
    start = data.find(b"Content-Type: text/html")
    html_bytes = b""
    if start >= 0:
        html_bytes = data[data.find(b"\r\n\r\n", start) + 4:data.rfind(b"\r\n--=_pw_")]
    return Message(content_key=key, signed=signed, html=html_bytes, html_source=rendered)


# --------------------------------------------------------------------------- text and images
class _HtmlMeasure(HTMLParser):
    """Visible words and image area, counted as SpamAssassin's HTML parser does
    (Mail::SpamAssassin::HTML: text outside <script>/<style>; an image without width or
    height counts 200 px for it, a percentage of an 800 x 600 screen)."""

    _HIDDEN = {"script", "style", "head", "title"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.images = 0
        self.image_area = 0
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._HIDDEN:
            self._hidden += 1
        if tag == "img":
            values = dict(attrs)
            self.images += 1
            self.image_area += _dimension(values.get("width"), 8) * _dimension(
                values.get("height"), 6)

    def handle_endtag(self, tag):
        if tag in self._HIDDEN and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def _dimension(value: str | None, percent_factor: int) -> int:
    found = re.fullmatch(r"\s*(\d+)(%)?\s*", value or "")
    if not found:
        return 200
    number = int(found.group(1)) * (percent_factor if found.group(2) else 1)
    return number if number > 0 else 200


@dataclass(frozen=True)
class TextAndImages:
    html_bytes: int
    text_bytes: int
    non_blank: int
    images: int
    image_area: int

    @property
    def ratio(self) -> float | None:
        return self.non_blank / self.image_area if self.image_area else None


def measure_html(html: str) -> TextAndImages:
    parser = _HtmlMeasure()
    parser.feed(html)
    parser.close()
    text = " ".join(" ".join(parser.text).split())
    return TextAndImages(html_bytes=len(html.encode("utf-8")),
                         text_bytes=len(text.encode("utf-8")),
                         non_blank=len(re.sub(r"\s", "", text)),
                         images=parser.images, image_area=parser.image_area)


def text_image_check(html: str) -> Check:
    name = "Enough text for its images"
    found = measure_html(html)
    if not found.images:
        return Check(name, True, "no images")
    figures = (f"{found.text_bytes:,} bytes of text, {found.images} image"
               f"{'s' if found.images != 1 else ''}, HTML of {found.html_bytes:,} bytes")
    if found.html_bytes <= IMAGE_ONLY_MAX_HTML_BYTES:
        return Check(name, False, (
            f"{figures}: spam filters distrust mail that is mostly pictures; SpamAssassin "
            f"adds up to {IMAGE_ONLY_MAX_POINTS} of the 5 points that mark spam "
            f"(HTML_IMAGE_ONLY) to HTML with images under {IMAGE_ONLY_MAX_HTML_BYTES:,} "
            "bytes, layout included. Write more text, or use fewer images (a tracking pixel "
            "counts as one)."), blocking=False)
    if found.ratio is not None and found.ratio <= IMAGE_RATIO_LOW:
        return Check(name, True, f"{figures}; the images cover much more area than the text "
                                 "(SpamAssassin's HTML_IMAGE_RATIO, a fraction of a point)")
    return Check(name, True, figures)


def size_check(html_part: bytes) -> Check:
    size = len(html_part)
    kb = f"{size / 1024:,.0f} KB" if size >= 1024 else f"{size} bytes"
    if size > GMAIL_CLIP_BYTES:
        return Check("HTML small enough not to be clipped by Gmail", False, (
            f"the HTML is {kb} as sent; Gmail shows about the first "
            f"{GMAIL_CLIP_BYTES // 1024} KB and hides the rest (the unsubscribe link too) "
            "behind “[Message clipped]”. Shorten it or move content to a web page."),
            blocking=False)
    return Check("HTML small enough not to be clipped by Gmail", True,
                 f"{kb} of about {GMAIL_CLIP_BYTES // 1024} KB")


# --------------------------------------------------------------------------- SpamAssassin
def _cached_score(message: Message) -> SpamScore | str:
    """The score, or the reason spamd could not give one; from Redis when known."""
    from redis.exceptions import RedisError

    from config.redis import get_redis

    digest = hashlib.sha256(f"{CACHE_VERSION}|{conf.SPAMD_URL}|{message.content_key}"
                            .encode()).hexdigest()
    key = f"newsletter:spamscore:{digest}"
    redis = None
    try:
        redis = get_redis()
        cached = redis.get(key)
        if cached is not None:
            found = json.loads(cached)
            return found["error"] if "error" in found else SpamScore.from_dict(found)
    except (RedisError, ValueError, KeyError, TypeError):
        pass  # no cache (Redis down, an old entry): ask spamd
    try:
        result: SpamScore | str = spamd_score(message.signed, conf.SPAMD_URL,
                                              timeout=conf.SPAMD_TIMEOUT_S)
        stored, seconds = json.dumps(result.as_dict()), CACHE_SECONDS
    except SpamdError as error:
        logger.warning("campaign.spamd_unavailable", extra={"error": str(error)})
        result = str(error)
        stored, seconds = json.dumps({"error": result}), FAILURE_CACHE_SECONDS
    if redis is not None:
        try:
            redis.set(key, stored, ex=seconds)
        except RedisError:
            pass
    return result


def spam_check(message: Message) -> Check:
    name = "SpamAssassin score"
    if not conf.SPAMD_URL:
        return Check(name, True, "not checked: SPAMD_URL is not set (`make run` starts a "
                                 "spamd when SpamAssassin is installed)")
    result = _cached_score(message)
    if isinstance(result, str):
        return Check(name, False, f"could not run: {result}", blocking=False)
    return score_check(result)


def score_check(result: SpamScore) -> Check:
    """ok under half the threshold, a warning from there, a loud warning at it."""
    name = "SpamAssassin score"
    rules = tuple(
        f"{r.name} ({r.points:+.1f}): {plain_words(r)}"
        for r in sorted(result.rules, key=lambda r: -r.points))
    figures = f"{result.score:.1f} points; SpamAssassin marks mail as spam at " \
              f"{result.threshold:.1f}"
    if result.score >= result.threshold:
        return Check("SpamAssassin marks this mail as spam", False,
                     f"{figures}. Most receiving sites would file it as spam: fix the rules "
                     "below first.", blocking=False, items=rules)
    if result.score >= result.threshold / 2:
        return Check(name, False, f"{figures}: past half way; the rules below add the most.",
                     blocking=False, items=rules)
    return Check(name, True, figures, items=rules)


def content_checks(campaign: Campaign) -> list[Check]:
    """Text against images, size, and SpamAssassin's score of the mail as sent."""
    if campaign_errors(campaign):
        return [Check("Content check (images, size, SpamAssassin)", False,
                      "not run: fix the errors above first", blocking=False)]
    try:
        message = subscriber_message(campaign)
    except Exception as error:  # a layout the renderer refuses: said above, never a 500
        logger.warning("campaign.content_check_failed",
                       extra={"campaign_id": campaign.pk, "error": str(error)})
        return [Check("Content check (images, size, SpamAssassin)", False,
                      f"not run: {error}", blocking=False)]
    return [text_image_check(message.html_source), size_check(message.html),
            spam_check(message)]
