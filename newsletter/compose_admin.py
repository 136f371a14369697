"""The compose page's editor and live preview (admin side of ``newsletter.compose``).

The body is edited in EasyMDE (django-easymde ships it as static files: no npm
build), with a toolbar of our own in ``static/newsletter/compose.js`` that writes
Markdown or HTML as the body format asks. The media library's upload and the
content blocks' list are other admin pages: their URLs are given to the page
only when they exist, and the buttons for them are left out otherwise.
"""

from __future__ import annotations

import json

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.urls import NoReverseMatch, reverse

from newsletter.campaign_models import Campaign
from newsletter.campaigns import CampaignError
from newsletter.compose import compose_campaign, live_preview
from newsletter.personalisation import FIELDS

PREVIEW_PERMISSIONS = ("newsletter.change_campaign", "newsletter.add_campaign")
UPLOAD_URL_NAME = "admin:newsletter_mediaasset_upload"
BLOCKS_URL_NAME = "admin:newsletter_contentblock_choices"


def _url(name: str) -> str:
    try:
        return reverse(name)
    except NoReverseMatch:
        return ""


class ComposeEditor(forms.Textarea):
    """The body's textarea, turned into the toolbar editor by compose.js."""

    def __init__(self, attrs=None):
        super().__init__({"rows": 18, "cols": 80, "class": "pw-compose-body", **(attrs or {})})

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        extra = {"data-fields": json.dumps(FIELDS)}
        for key, url_name in (("data-upload-url", UPLOAD_URL_NAME),
                              ("data-blocks-url", BLOCKS_URL_NAME)):
            url = _url(url_name)
            if url:
                extra[key] = url
        context["widget"]["attrs"].update(extra)
        return context

    class Media:
        css = {"all": ("easymde/easymde.min.css", "newsletter/compose.css")}
        js = ("easymde/easymde.min.js", "newsletter/compose.js")


def may_preview(user) -> bool:
    return any(user.has_perm(permission) for permission in PREVIEW_PERMISSIONS)


def live_preview_view(request):
    """POST the form's content fields (+ campaign, preview_as) -> the rendered mail as JSON.

    ``{"html", "subject", "preheader", "text", "from"}``, or ``{"error"}`` with 400.
    """
    if not may_preview(request.user):
        raise PermissionDenied
    if request.method != "POST":
        return JsonResponse({"error": "POST the campaign's fields."}, status=405)
    saved = None
    campaign_id = request.POST.get("campaign", "")
    if campaign_id:
        try:
            saved = Campaign.objects.select_related("layout").get(pk=int(campaign_id))
        except (ValueError, Campaign.DoesNotExist):
            return JsonResponse({"error": f"No campaign with the id {campaign_id!r}."},
                                status=400)
    subscription_id = _preview_as(request.POST.get("preview_as", ""))
    try:
        campaign = compose_campaign(request.POST, saved)
        preview = live_preview(campaign, subscription_id)
    except CampaignError as error:
        return JsonResponse({"error": str(error)}, status=400)
    return JsonResponse({"html": preview.html, "subject": preview.subject,
                         "preheader": preview.preheader, "text": preview.text,
                         "from": preview.from_header})


def _preview_as(value: str) -> int | None:
    """The subscription to personalise as (as the saved preview's frame takes it)."""
    try:
        return int(value) if value else None
    except ValueError:
        return None
