"""The compose page's live preview: unsaved form fields rendered exactly as the mail.

The fields come straight from the editor's browser (hostile: bounded, validated);
they are put on a Campaign instance that is never saved (a copy of the saved one
when there is one, so the sender falls back to its lists as the mail's does) and
rendered by ``campaign_preview``, the same code the test send and the sending
engine's templates come from. The HTML goes into a sandboxed ``srcdoc`` iframe;
``preview_document`` adds the same Content-Security-Policy the saved preview's
frame is served with, so nothing an editor typed can run or fetch beyond images.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from newsletter.campaign_models import Campaign, Layout
from newsletter.campaigns import CampaignError, campaign_errors, campaign_preview

# Bounds on what one preview request may carry. The body bound is far above any
# newsletter (a 50 KB body is a long one; Gmail clips mails past ~102 KB of HTML).
MAX_BODY_CHARS = 1_000_000
MAX_LINE_CHARS = {"subject": 998, "preheader": 255}  # the model's own max_length
FIELDS = ("subject", "preheader", "layout", "body_format", "body", "text_body")

# As frame_view's header: no scripts, no forms, no requests out but images.
PREVIEW_CSP = "default-src 'none'; img-src * data:; style-src 'unsafe-inline'"
_HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class LivePreview:
    subject: str
    preheader: str
    html: str
    text: str
    from_header: str


def compose_campaign(data, saved: Campaign | None = None) -> Campaign:
    """An unsaved Campaign with the posted fields (a copy of ``saved`` when given).

    Raises CampaignError naming the field for input the form would refuse too.
    """
    campaign = copy.copy(saved) if saved is not None else Campaign()
    for name, limit in MAX_LINE_CHARS.items():
        value = str(data.get(name, "") or "")
        if len(value) > limit:
            raise CampaignError(f"The {name} is longer than {limit} characters.")
        setattr(campaign, name, value)
    for name in ("body", "text_body"):
        value = str(data.get(name, "") or "")
        if len(value) > MAX_BODY_CHARS:
            raise CampaignError(f"The {name.replace('_', ' ')} is longer than "
                                f"{MAX_BODY_CHARS:,} characters.")
        setattr(campaign, name, value)
    body_format = data.get("body_format") or Campaign.BodyFormat.MARKDOWN
    if body_format not in Campaign.BodyFormat.values:
        raise CampaignError(f"Unknown body format {body_format!r}: choose one of "
                            f"{', '.join(Campaign.BodyFormat.values)}.")
    campaign.body_format = body_format
    layout_id = data.get("layout") or ""
    if not layout_id:
        campaign.layout = None
    else:
        try:
            campaign.layout = Layout.objects.get(pk=int(layout_id))
        except (ValueError, TypeError, Layout.DoesNotExist) as error:
            raise CampaignError(f"No layout with the id {layout_id!r}.") from error
    return campaign


def live_preview(campaign: Campaign, subscription_id: int | None = None) -> LivePreview:
    """The mail as ``campaign_preview`` renders it, personalisation problems as errors.

    Only personalisation is checked here (an empty subject still previews): the
    message is the one the form would show, naming the allowed fields and filters.
    """
    problems = [message for message in campaign_errors(campaign).values()
                if message.startswith("Personalisation")]
    if problems:
        raise CampaignError(" ".join(problems))
    try:
        preview = campaign_preview(campaign, subscription_id)
    except ValueError as error:  # a layout or template the checks above let through
        raise CampaignError(str(error)) from error
    return LivePreview(subject=preview.subject, preheader=preview.preheader,
                       html=preview_document(preview.html), text=preview.text,
                       from_header=preview.from_header)


def preview_document(html: str) -> str:
    """The mail HTML with the preview's Content-Security-Policy as its first head element."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{PREVIEW_CSP}">'
    match = _HEAD.search(html)
    if match:
        return html[:match.end()] + meta + html[match.end():]
    return meta + html
