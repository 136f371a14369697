"""Campaigns and their layouts (imported by ``newsletter.models``).

Writes go through ``newsletter.campaigns``; these models hold fields,
constraints and small properties. What a campaign is sent to is frozen in the
sending engine's ledger (``sending.models.Mailing`` / ``Delivery``) when it starts.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from newsletter.tracking_models import PRIVACY_CHOICES


class Layout(models.Model):
    """A reusable HTML frame: a ``{{ content }}`` slot and a footer with the legal bits."""

    name = models.CharField(_("name"), max_length=200, unique=True)
    html = models.TextField(
        _("HTML"),
        help_text=_("Must contain {{ content }} once; after it (the footer) "
                    "{{ unsubscribe_url }} and {{ postal_address }}. {{ preheader }} is "
                    "optional. Personalisation tags such as {{ subscriber.name }} work here."))
    css = models.TextField(_("CSS"), blank=True,
                           help_text=_("Inlined into the elements when the mail is rendered."))
    postal_address = models.TextField(
        _("sender's postal address"), blank=True,
        help_text=_("Required by law in every marketing mail (shown in the footer)."))
    is_default = models.BooleanField(_("default for new campaigns"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_default", "name"]
        verbose_name = _("layout")
        verbose_name_plural = _("layouts")

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    """One newsletter issue: content, audience, schedule, and the mailing it became."""

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    class BodyFormat(models.TextChoices):
        HTML = "html", _("HTML")
        MARKDOWN = "markdown", _("Markdown")

    EDITABLE_STATES = (State.DRAFT, State.SCHEDULED)

    name = models.CharField(_("internal name"), max_length=200)
    subject = models.CharField(_("subject"), max_length=998, blank=True)
    preheader = models.CharField(
        _("preheader"), max_length=255, blank=True,
        help_text=_("The line mail programs show after the subject."))
    from_name = models.CharField(_("from name"), max_length=200, blank=True,
                                 help_text=_("Empty: the first list's from name."))
    from_email = models.EmailField(_("from address"), max_length=254, blank=True,
                                   help_text=_("Empty: the first list's from address."))
    reply_to = models.EmailField(_("reply-to"), max_length=254, blank=True,
                                 help_text=_("Empty: the first list's reply-to."))
    layout = models.ForeignKey(Layout, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="campaigns", verbose_name=_("layout"),
                               help_text=_("Empty: the default layout."))
    body_format = models.CharField(_("body format"), max_length=16, choices=BodyFormat.choices,
                                   default=BodyFormat.MARKDOWN)
    body = models.TextField(
        _("body"), blank=True,
        help_text=_('Personalise with {{ subscriber.name|default:"reader" }}, '
                    "{{ subscriber.attributes.city }}, {{ unsubscribe_url }}, "
                    "{{ preferences_url }}."))
    text_body = models.TextField(
        _("plain-text part"), blank=True,
        help_text=_("Empty: generated from the HTML when the mail is rendered."))
    lists = models.ManyToManyField("newsletter.MailingList", related_name="campaigns",
                                   verbose_name=_("lists"), blank=True)
    exclude_lists = models.ManyToManyField(
        "newsletter.MailingList", related_name="+", blank=True,
        verbose_name=_("excluding subscribers of"),
        help_text=_("Confirmed subscribers of these lists are left out."))
    segment_attributes = models.JSONField(
        _("attribute filters"), default=dict, blank=True,
        help_text=_('Only subscribers whose attributes equal these, e.g. {"city": "Berlin"}.'))
    subscribed_after = models.DateTimeField(_("subscribed after"), null=True, blank=True)
    subscribed_before = models.DateTimeField(_("subscribed before"), null=True, blank=True)
    tags = models.CharField(_("tags"), max_length=255, blank=True,
                            help_text=_("Comma-separated, for your own filing."))
    pool = models.ForeignKey("sending.RelayPool", null=True, blank=True,
                             on_delete=models.PROTECT, related_name="+",
                             limit_choices_to={"purpose": "bulk"},
                             verbose_name=_("relay pool"),
                             help_text=_("Empty: the bulk pool."))
    canary = models.CharField(
        _("canary sending"), max_length=8, default="auto",
        choices=[("auto", _("Automatic: above CANARY_MIN_RECIPIENTS recipients")),
                 ("on", _("On: first a slice of the most recently confirmed")),
                 ("off", _("Off: everyone at once"))],
        help_text=_("Send to a small slice first and widen while bounces, complaints and "
                    "blocks stay low; a bad slice pauses the campaign."))
    # Tracking and archive (newsletter.tracking, newsletter.archive). Empty: the first
    # list's default; opens are never tracked unless asked for.
    track_clicks = models.BooleanField(
        _("track clicks"), null=True, blank=True,
        help_text=_("Empty: the first list's default. Unsubscribe and preference links "
                    "are never tracked."))
    track_opens = models.BooleanField(
        _("track opens"), default=False,
        help_text=_("A tracking pixel. Machine opens (Apple Mail Privacy Protection, "
                    "scanners) are counted apart."))
    tracking_privacy = models.CharField(
        _("tracking privacy"), max_length=16, blank=True,
        choices=PRIVACY_CHOICES, help_text=_("Empty: the first list's default."))
    archive_public = models.BooleanField(
        _("show in the public archive"), default=False,
        help_text=_("Listed at /archive/<list>/ for lists with a public archive, "
                    "without any subscriber's data."))
    segment_clicked_campaign = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("only those who clicked in campaign"),
        help_text=_("Needs linked tracking in that campaign; machine clicks do not count."))
    segment_opened_days = models.PositiveIntegerField(
        _("only those who opened in the last N days"), null=True, blank=True,
        help_text=_("Human opens in campaigns with linked tracking."))

    state = models.CharField(_("state"), max_length=16, choices=State.choices,
                             default=State.DRAFT, editable=False)
    scheduled_at = models.DateTimeField(_("scheduled for (UTC)"), null=True, blank=True,
                                        editable=False, db_index=True)
    schedule_timezone = models.CharField(max_length=64, blank=True, editable=False)
    mailing = models.OneToOneField("sending.Mailing", null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="campaign",
                                   editable=False)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        permissions = [
            ("schedule_campaign",
             "Can test, schedule, start, pause, resume and cancel campaigns"),
        ]
        indexes = [models.Index(fields=["state", "scheduled_at"], name="campaign_due_idx")]

    def __str__(self) -> str:
        return self.name

    @property
    def editable(self) -> bool:
        return self.state in self.EDITABLE_STATES

    @property
    def tag_list(self) -> list[str]:
        return [t.strip() for t in self.tags.split(",") if t.strip()]
