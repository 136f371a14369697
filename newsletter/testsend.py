"""Test sends: the campaign as a chosen subscriber gets it, with links that work but never act.

A test mail is personalised with the chosen subscriber's name and attributes, and
its links are rewritten as the real send would rewrite them (tracked links, the
open pixel), but every link of ours points at a test page instead:

- unsubscribe, one-click and preferences go to ``/t/<token>/``, a page saying
  "This was a test mail: nothing changed" (a one-click POST gets the same);
- a tracked link goes to ``/t/c/<token>/``, which redirects to its target and
  counts nothing; the pixel ``/t/o/<token>/`` is a GIF that counts nothing.

The tokens are signed with their own derived key (``tokens.test_link_token``):
they name no subscription, so an outsider holding a forwarded test mail can do
nothing with it, and a test link never unsubscribes the real subscriber. The
mailto unsubscribe address (which the bounce listener would act on) is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.urls import reverse

from newsletter import tokens
from newsletter.campaign_models import Campaign
from newsletter.campaign_render import Parts
from newsletter.tracking import add_pixel, campaign_tracking, rewrite_links

# What each of our links does in the real mail (shown on the test page).
LINK_KINDS = {"unsubscribe", "one-click", "preferences"}


def test_link_url(kind: str) -> str:
    return settings.SITE_URL + reverse("newsletter:test-link",
                                       args=[tokens.test_link_token({"k": kind})])


def test_click_url(url: str) -> str:
    return settings.SITE_URL + reverse("newsletter:test-click",
                                       args=[tokens.test_link_token({"k": "click", "u": url})])


def test_open_url() -> str:
    return settings.SITE_URL + reverse("newsletter:test-open",
                                       args=[tokens.test_link_token({"k": "open"})])


class TestTrackLinks(dict):
    """``{{ track.c12-3 }}`` / ``{{ track.o12 }}`` of a test mail (see tracking.TrackLinks):
    the test redirect to the link's target, and the pixel that counts nothing."""

    __slots__ = ("campaign_id", "targets")
    __test__ = False  # not a pytest class

    def __init__(self, campaign_id: int, targets: list[str]):
        super().__init__()
        self.campaign_id, self.targets = campaign_id, targets

    def get(self, key, default=None):
        if not isinstance(key, str) or len(key) < 2:
            return default
        if key[0] == "c":
            campaign, _, index = key[1:].partition("-")
            if campaign == str(self.campaign_id) and index.isdigit() and int(index) < len(
                    self.targets):
                return test_click_url(self.targets[int(index)])
        elif key == f"o{self.campaign_id}":
            return test_open_url()
        return default


@dataclass(frozen=True)
class TestMail:
    subject: str
    html: str
    text: str
    from_header: str
    headers: dict[str, str]

    __test__ = False  # not a pytest class


def test_mail_render(campaign: Campaign, subscription_id: int | None = None) -> TestMail:
    """The mail as the subscriber would get it (a sample reader when none is given), with
    test links in place of every link that would act."""
    from email.utils import formataddr

    from newsletter.campaigns import campaign_parts, campaign_sender, preview_context
    from sending.render import compile_template

    context = dict(preview_context(subscription_id))
    context.pop("unsubscribe_mailto", None)  # the bounce listener would act on it
    unsubscribe = test_link_url("unsubscribe")
    context.update(unsubscribe_url=unsubscribe, one_click_url=test_link_url("one-click"),
                   preferences_url=test_link_url("preferences"))
    parts = campaign_parts(campaign)
    html, text = parts.html, parts.text
    choice = campaign_tracking(campaign)
    targets: list[str] = []
    if choice.clicks:
        html, text, targets = rewrite_links(campaign.id, html, text)
    if choice.opens and html:
        html = add_pixel(campaign.id, html)
    context["track"] = TestTrackLinks(campaign.id, targets)
    parts = Parts(html=html, text=text)
    name, address, reply_to = campaign_sender(campaign)
    headers = {"X-Campaign-Test": str(campaign.id),
               "List-Unsubscribe": f"<{context['one_click_url']}>",
               "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    if reply_to:
        headers["Reply-To"] = reply_to
    return TestMail(
        subject=compile_template(campaign.subject).render(context),
        html=compile_template(parts.html, html=True).render(context),
        text=compile_template(parts.text).render(context),
        from_header=formataddr((name, address)) if name else address,
        headers=headers,
    )
