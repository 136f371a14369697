"""Lists, subscribers, subscriptions, and the append-only consent log.

Writes go through ``newsletter.services``; models hold fields and constraints.
"""

from __future__ import annotations

import hashlib

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from newsletter.tracking_models import PRIVACY_CHOICES

DEFAULT_CONSENT_TEXT = _(
    "I want to receive this newsletter by e-mail. I can unsubscribe at any time "
    "with the link in every mail."
)


class MailingList(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=64, unique=True,
                            help_text=_("Used in the signup page address: /s/<slug>/"))
    description = models.TextField(_("description"), blank=True)
    from_name = models.CharField(_("from name"), max_length=200, blank=True)
    from_email = models.EmailField(_("from address"), max_length=254, blank=True,
                                   help_text=_("Empty: the service's default sender."))
    reply_to = models.EmailField(_("reply-to"), max_length=254, blank=True)
    double_opt_in = models.BooleanField(
        _("double opt-in required"), default=True,
        help_text=_("New signups must confirm by following a link mailed to them."))
    public = models.BooleanField(
        _("public"), default=True,
        help_text=_("Has a signup page and is offered on the preference page."))
    consent_text = models.TextField(
        _("consent text"), default=DEFAULT_CONSENT_TEXT,
        help_text=_("Shown next to the signup checkbox. Every change is kept as a new "
                    "version; consent records point to the version the person saw."))
    # Tracking defaults for its campaigns, and the public archive (newsletter.archive).
    track_clicks = models.BooleanField(
        _("track clicks by default"), default=False,
        help_text=_("Campaigns to this list rewrite their links to count clicks."))
    tracking_privacy = models.CharField(
        _("tracking privacy by default"), max_length=16, default="counts",
        choices=PRIVACY_CHOICES)
    archive_public = models.BooleanField(
        _("public archive"), default=False,
        help_text=_("Campaigns marked public are shown at /archive/<slug>/ with a feed "
                    "(the list must also be public)."))
    personalisation_defaults = models.JSONField(
        _("personalisation defaults"), default=dict, blank=True,
        help_text=_('What the archive shows instead of personal fields, e.g. '
                    '{"name": "reader", "city": "your town"}.'))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("mailing list")
        verbose_name_plural = _("mailing lists")

    def __str__(self) -> str:
        return self.name


class ConsentText(models.Model):
    """One version of a list's consent text, never changed once written."""

    mailing_list = models.ForeignKey(MailingList, on_delete=models.PROTECT,
                                     related_name="consent_texts")
    version = models.PositiveIntegerField()
    text = models.TextField()
    sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["mailing_list", "-version"]
        constraints = [models.UniqueConstraint(fields=["mailing_list", "version"],
                                               name="consent_text_unique_version")]

    def __str__(self) -> str:
        return f"{self.mailing_list} v{self.version}"

    @staticmethod
    def digest(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Subscriber(models.Model):
    """One person, by normalised address (see deliverability.suppression.normalise)."""

    email = models.CharField(_("e-mail address"), max_length=254, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["email"]
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")

    def __str__(self) -> str:
        return self.email


class Subscription(models.Model):
    """A subscriber on a list. Its id is what the sending engine stores per delivery."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending confirmation")
        CONFIRMED = "confirmed", _("Confirmed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")

    # No single-column indexes: the unique (subscriber, list) and the (list, status)
    # indexes serve those lookups, and every index costs on a million-row import.
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE,
                                   related_name="subscriptions", db_index=False)
    # No database constraint to the list: every insert would lock the one list row
    # (FOR KEY SHARE), which makes concurrent imports and signups queue on it. Lists
    # are deleted through Django, which cascades.
    mailing_list = models.ForeignKey(MailingList, on_delete=models.CASCADE,
                                     related_name="subscriptions", db_index=False,
                                     db_constraint=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # Set for a pending subscription when its confirmation was requested.
    requested_at = models.DateTimeField(null=True, blank=True)
    # Informational (which import added it): no per-row constraint check on bulk imports.
    subscriber_import = models.ForeignKey("SubscriberImport", null=True, blank=True,
                                          on_delete=models.SET_NULL, related_name="+",
                                          db_constraint=False, db_index=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subscriber", "mailing_list"],
                                               name="subscription_unique_per_list")]
        indexes = [models.Index(fields=["mailing_list", "status"]),
                   models.Index(fields=["requested_at"], condition=Q(status="pending"),
                                name="subscription_pending_idx")]

    def __str__(self) -> str:
        return f"{self.subscriber_id} on {self.mailing_list_id} ({self.status})"


class ConsentRecord(models.Model):
    """One consent event, append-only: the proof that (and how) someone opted in or out.

    It outlives the subscription (purge of unconfirmed signups keeps it). Erasure
    blanks the address, IP and user agent and keeps ``address_sha256``.
    """

    class Event(models.TextChoices):
        SIGNUP = "signup", _("Signup")
        CONFIRMATION = "confirmation", _("Confirmation")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribe")
        IMPORT = "import", _("Import")
        RESUBSCRIBE = "resubscribe", _("Re-subscribe")
        PURGE = "purge", _("Unconfirmed signup purged")
        ERASE = "erase", _("Personal data erased")

    class Source(models.TextChoices):
        FORM = "form", _("Signup form")
        EMBED = "embed", _("Embedded form")
        EMAIL_LINK = "email_link", _("Link in a mail")
        ONE_CLICK = "one_click", _("One-click unsubscribe (RFC 8058)")
        PREFERENCES = "preferences", _("Preference page")
        IMPORT = "import", _("Import")
        ADMIN = "admin", _("Admin")
        API = "api", _("API")
        COMPLAINT = "complaint", _("Spam complaint")
        SYSTEM = "system", _("System")

    # References without database constraints: the log must outlive what it names
    # (Django still applies SET_NULL), and imports append a million rows without
    # a foreign-key check per row. Only lookups the service makes are indexed.
    event = models.CharField(max_length=16, choices=Event.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    created_at = models.DateTimeField(default=timezone.now)
    subscription = models.ForeignKey(Subscription, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="consent_records",
                                     db_constraint=False)
    mailing_list = models.ForeignKey(MailingList, null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+",
                                     db_constraint=False, db_index=False)
    list_slug = models.CharField(max_length=64, blank=True)
    address = models.CharField(max_length=254, blank=True)
    address_sha256 = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    consent_text = models.ForeignKey(ConsentText, null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+",
                                     db_constraint=False, db_index=False)
    subscriber_import = models.ForeignKey("SubscriberImport", null=True, blank=True,
                                          on_delete=models.PROTECT, related_name="+",
                                          db_constraint=False, db_index=False)
    detail = models.CharField(max_length=400, blank=True)

    class Meta:
        ordering = ["-id"]  # the order of writing (no index on created_at needed)
        # Records are found through their subscription (an index that only ever grows
        # at its end), or, once the subscription is gone, by the address' hash: that
        # index holds only those few orphaned records, so imports never touch it.
        indexes = [models.Index(fields=["address_sha256"], condition=Q(subscription=None),
                                name="consent_orphan_address_idx")]
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")

    def __str__(self) -> str:
        return f"{self.event} {self.list_slug} {self.created_at:%Y-%m-%d %H:%M}"

    @staticmethod
    def hash_address(address: str) -> str:
        return hashlib.sha256(address.encode("utf-8", "surrogatepass")).hexdigest()


class SubscriberImport(models.Model):
    """One CSV import: who, what file, what consent the file states, and how it went."""

    class Mode(models.TextChoices):
        CONFIRMED = "confirmed", _("Consent stated for the whole file (subscribed at once)")
        REQUEST_OPT_IN = "request_opt_in", _("Pending: mail each row an opt-in request")

    class State(models.TextChoices):
        PREVIEW = "preview", _("Waiting for the column mapping")
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    mailing_list = models.ForeignKey(MailingList, on_delete=models.PROTECT,
                                     related_name="imports", verbose_name=_("mailing list"))
    mode = models.CharField(_("consent"), max_length=16, choices=Mode.choices,
                            default=Mode.REQUEST_OPT_IN)
    consent_statement = models.TextField(
        _("consent statement"), blank=True,
        help_text=_("Where and how these people agreed, e.g. 'Checkbox at checkout on "
                    "shop.example.org, 2023-2025'. Required when consent is stated."))
    file = models.FileField(_("CSV file"), upload_to="imports/", blank=True)
    source_name = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    rows_read = models.PositiveIntegerField(default=0)
    rows_invalid = models.PositiveIntegerField(default=0)
    rows_duplicate = models.PositiveIntegerField(default=0)
    rows_suppressed = models.PositiveIntegerField(default=0)
    subscribers_created = models.PositiveIntegerField(default=0)
    subscriptions_created = models.PositiveIntegerField(default=0)
    subscriptions_existing = models.PositiveIntegerField(default=0)
    report = models.FileField(upload_to="imports/reports/", blank=True)
    error = models.TextField(blank=True)
    encoding = models.CharField(_("encoding"), max_length=16, blank=True,
                                help_text=_("Empty: detected from the file."))
    column_map = models.JSONField(default=list, blank=True,
                                  help_text=_("Per column: email, name, ignore or "
                                              "attribute:<key>; empty: by header names."))
    skip_reasons = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("subscriber import")
        verbose_name_plural = _("subscriber imports")

    def __str__(self) -> str:
        return f"{self.source_name or self.file.name} -> {self.mailing_list}"

    @property
    def percent(self) -> int:
        if self.state == self.State.DONE:
            return 100
        if not self.bytes_total:
            return 0
        return min(99, int(self.bytes_done * 100 / self.bytes_total))


# Campaigns and layouts live in their own module; imported here so Django finds them.
from newsletter.campaign_models import Campaign, Layout  # noqa: E402, F401
from newsletter.media_models import ContentBlock, MediaAsset  # noqa: E402, F401
from newsletter.tracking_models import (  # noqa: E402, F401
    TrackedLink,
    TrackingBatch,
    TrackingCount,
    TrackingEvent,
    TrackingUnique,
)
