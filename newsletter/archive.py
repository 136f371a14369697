"""The public archive: past campaigns of a list at /archive/<slug>/, with RSS and Atom feeds.

Shown only for a list that is public and has its archive switched on, and
only campaigns marked public that have started. Each issue is rendered from
the mailing's snapshot (what was sent) for nobody: personal fields take the
list's ``personalisation_defaults`` (else the tag's own ``|default``),
unsubscribe and preference links point to the signup page, tracked links go
straight to their targets and the open pixel is removed. The mail's HTML is
the editor's: it is served with a sandboxing Content-Security-Policy, so no
script in it runs on our origin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.syndication.views import Feed
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import format_html

from newsletter import links
from newsletter.campaign_models import Campaign
from newsletter.models import MailingList
from newsletter.tracking import PIXEL_MARK
from newsletter.tracking_models import TrackedLink
from sending.render import compile_template

ARCHIVE_CSP = ("default-src 'none'; img-src * data:; style-src 'unsafe-inline'; "
               "sandbox allow-popups allow-popups-to-escape-sandbox "
               "allow-top-navigation-by-user-activation")
_PIXEL = re.compile(rf"<img\b[^>]*\b{PIXEL_MARK}\b[^>]*>", re.IGNORECASE)
_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)
_EXCERPT = 300


def archive_list(slug: str) -> MailingList:
    found = MailingList.objects.filter(slug=slug, public=True, archive_public=True).first()
    if found is None:
        raise Http404("no public archive for this list")
    return found


def archive_campaigns(mailing_list: MailingList):
    return (Campaign.objects.filter(lists=mailing_list, archive_public=True,
                                    mailing__isnull=False,
                                    state__in=[Campaign.State.SENDING, Campaign.State.PAUSED,
                                               Campaign.State.SENT])
            .select_related("mailing").order_by("-started_at", "-id"))


def archive_context(campaign: Campaign, mailing_list: MailingList) -> dict:
    """A render context that belongs to no one."""
    defaults = {k: v for k, v in (mailing_list.personalisation_defaults or {}).items()
                if isinstance(k, str) and isinstance(v, str | int | float)}
    signup = links.signup_url(mailing_list)
    tracked = {f"c{campaign.id}-{index}": url for index, url in
               TrackedLink.objects.filter(campaign=campaign).values_list("index", "url")}
    return {
        "email": "",
        "subscriber": {"email": "", "name": str(defaults.get("name", "")),
                       "attributes": {k: str(v) for k, v in defaults.items()}},
        "unsubscribe_url": signup, "one_click_url": signup, "preferences_url": signup,
        "list_id": links.list_id(mailing_list), "track": tracked,
    }


@dataclass(frozen=True)
class Issue:
    campaign: Campaign
    mailing_list: MailingList
    subject: str
    html: str
    text: str

    @property
    def excerpt(self) -> str:
        preheader = self.campaign.preheader.strip()
        text = " ".join(self.text.split())
        source = preheader or text
        return source if len(source) <= _EXCERPT else source[:_EXCERPT].rsplit(" ", 1)[0] + " …"


def archive_issue(campaign: Campaign, mailing_list: MailingList) -> Issue:
    mailing = campaign.mailing
    context = archive_context(campaign, mailing_list)
    html = _PIXEL.sub("", mailing.html_template)
    return Issue(
        campaign=campaign, mailing_list=mailing_list,
        subject=compile_template(mailing.subject_template).render(context),
        html=compile_template(html, html=True).render(context) if html else "",
        text=compile_template(mailing.text_template).render(context),
    )


# --------------------------------------------------------------------------- views
def archive_index(request: HttpRequest, slug: str) -> HttpResponse:
    mailing_list = archive_list(slug)
    issues = [archive_issue(c, mailing_list) for c in archive_campaigns(mailing_list)[:100]]
    return render(request, "newsletter/archive.html", {
        "mailing_list": mailing_list, "issues": issues,
        "signup_url": reverse("newsletter:signup", args=[mailing_list.slug]),
    })


def archive_detail(request: HttpRequest, slug: str, campaign_id: int) -> HttpResponse:
    mailing_list = archive_list(slug)
    campaign = get_object_or_404(archive_campaigns(mailing_list), id=campaign_id)
    issue = archive_issue(campaign, mailing_list)
    if issue.html:
        bar = format_html(
            '<div style="font:15px/1.4 system-ui,sans-serif;padding:10px 16px;'
            'background:#f3f4f6;color:#111;border-bottom:1px solid #ddd">'
            '<a href="{}" style="color:#0b5cad">&larr; {}</a> &middot; {}</div>',
            reverse("newsletter:archive", args=[slug]), mailing_list.name,
            campaign.started_at.strftime("%Y-%m-%d") if campaign.started_at else "")
        found = _BODY_OPEN.search(issue.html)
        at = found.end() if found else 0
        body = issue.html[:at] + bar + issue.html[at:]
        response = HttpResponse(body, content_type="text/html; charset=utf-8")
    else:
        response = render(request, "newsletter/archive_text.html",
                          {"mailing_list": mailing_list, "issue": issue})
    response["Content-Security-Policy"] = ARCHIVE_CSP
    response["X-Frame-Options"] = "DENY"
    response["Referrer-Policy"] = "no-referrer"
    return response


class ArchiveRss(Feed):
    def get_object(self, request, slug: str):
        return archive_list(slug)

    def title(self, obj: MailingList) -> str:
        return obj.name

    def link(self, obj: MailingList) -> str:
        return reverse("newsletter:archive", args=[obj.slug])

    def description(self, obj: MailingList) -> str:
        return obj.description or f"Past issues of {obj.name}"

    def items(self, obj: MailingList):
        return [archive_issue(c, obj) for c in archive_campaigns(obj)[:30]]

    def item_title(self, item: Issue) -> str:
        return item.subject

    def item_description(self, item: Issue) -> str:
        return item.excerpt

    def item_link(self, item: Issue) -> str:
        return reverse("newsletter:archive-issue", args=[item.mailing_list.slug,
                                                         item.campaign.id])

    def item_guid(self, item: Issue) -> str:
        return f"campaign-{item.campaign.id}"

    item_guid_is_permalink = False

    def item_pubdate(self, item: Issue):
        return item.campaign.started_at


class ArchiveAtom(ArchiveRss):
    feed_type = Atom1Feed

    def subtitle(self, obj: MailingList) -> str:
        return self.description(obj)


urlpatterns = [
    path("archive/<slug:slug>/", archive_index, name="archive"),
    path("archive/<slug:slug>/rss/", ArchiveRss(), name="archive-rss"),
    path("archive/<slug:slug>/atom/", ArchiveAtom(), name="archive-atom"),
    path("archive/<slug:slug>/<int:campaign_id>/", archive_detail, name="archive-issue"),
]
