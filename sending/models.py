"""Relay pools and relays, and the transactional mail ledger."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class RelayPool(models.Model):
    """A group of relays used for one purpose, kept apart from the other."""

    class Purpose(models.TextChoices):
        BULK = "bulk", _("Bulk (campaigns)")
        TRANSACTIONAL = "transactional", _("Transactional (confirmations, tests, alerts)")

    name = models.SlugField(max_length=64, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)

    class Meta:
        ordering = ["purpose", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.purpose})"


class Relay(models.Model):
    """An SMTP server we hand mail to. Its password lives in an env var, never here."""

    class TLSMode(models.TextChoices):
        STARTTLS = "starttls", _("STARTTLS required")
        IMPLICIT = "implicit", _("Implicit TLS (SMTPS)")
        NONE = "none", _("None (local sink only)")

    pool = models.ForeignKey(RelayPool, on_delete=models.CASCADE, related_name="relays")
    name = models.SlugField(max_length=64)
    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=587)
    tls_mode = models.CharField(max_length=16, choices=TLSMode.choices, default=TLSMode.STARTTLS)
    verify_certificate = models.BooleanField(default=True)
    username = models.CharField(max_length=255, blank=True)
    password_env = models.CharField(
        max_length=128,
        blank=True,
        help_text=_("Name of the environment variable that holds the password."),
    )
    helo_name = models.CharField(max_length=255, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    max_connections = models.PositiveIntegerField(default=4)
    max_rate_per_s = models.FloatField(default=50.0)
    priority = models.PositiveIntegerField(default=100, help_text=_("Lower is tried first."))
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["pool", "priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["pool", "name"], name="relay_unique_name_in_pool"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.host}:{self.port}"


class TransactionalEmail(models.Model):
    """One-off mail (confirmations, test sends, alerts): recorded, then sent once."""

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        DEFERRED = "deferred", _("Deferred")
        FAILED = "failed", _("Failed")
        REVIEW = "review", _("Possibly sent (worker died mid-send)")

    to = models.EmailField(max_length=320)
    subject = models.CharField(max_length=998)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    from_email = models.CharField(max_length=320, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    purpose = models.CharField(max_length=32, default="system")
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    relay = models.CharField(max_length=255, blank=True)
    last_reply = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["state", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} to {self.to} ({self.state})"


class Mailing(models.Model):
    """One bulk send (a campaign issue's run): a snapshot of what goes out to whom.

    The content is copied here when the mailing is created, so editing the
    campaign afterwards never changes mail already being sent. Templates use
    ``sending.render`` syntax (``{{ subscriber.name }}``).
    """

    class State(models.TextChoices):
        DRAFT = "draft", _("Draft")
        BUILDING = "building", _("Building the ledger")
        SENDING = "sending", _("Sending")
        PAUSED = "paused", _("Paused")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    reference = models.CharField(max_length=128, blank=True,
                                 help_text=_("What started it (e.g. campaign:12)."))
    pool = models.ForeignKey(RelayPool, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="mailings")
    from_email = models.CharField(max_length=320, help_text=_("From header, e.g. News <n@x.org>"))
    reply_to = models.CharField(max_length=320, blank=True)
    subject_template = models.CharField(max_length=998)
    text_template = models.TextField()
    html_template = models.TextField(blank=True)
    list_id = models.CharField(max_length=255, blank=True, help_text=_("List-Id header value."))
    max_age_hours = models.PositiveIntegerField(default=48)
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    pause_reason = models.TextField(blank=True, help_text=_("Why it was paused (guardrails)."))
    recipients = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"mailing {self.id} {self.reference} ({self.state})"


class Delivery(models.Model):
    """One recipient of one mailing: the row a worker claims, sends, and records.

    States: ``queued`` -> ``claimed`` (by a worker token) -> ``sent`` /
    ``deferred`` (waits for ``next_attempt_at``) / ``bounced`` / ``failed`` /
    ``expired`` (too old to be worth sending; not a bounce) / ``suppressed``
    (skipped at send time) / ``skipped`` (no longer wanted: unsubscribed, erased,
    list deleted; checked just before sending). ``review`` means *possibly sent*: its worker died
    while the message was in flight; it is never resent automatically.
    """

    class State(models.TextChoices):
        QUEUED = "queued", _("Queued")
        CLAIMED = "claimed", _("Claimed by a worker")
        SENT = "sent", _("Sent (accepted by the relay)")
        DEFERRED = "deferred", _("Deferred")
        BOUNCED = "bounced", _("Bounced")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        SUPPRESSED = "suppressed", _("Suppressed")
        SKIPPED = "skipped", _("Skipped: unsubscribed, erased or list deleted")
        REVIEW = "review", _("Possibly sent: needs review")
        CANCELLED = "cancelled", _("Cancelled before sending")

    OPEN_STATES = (State.QUEUED, State.CLAIMED, State.DEFERRED)

    # No index of its own (the unique (mailing, address) index serves every lookup by
    # mailing) and no database-level check (a million-row fan-out would fire a million
    # foreign-key triggers; rows are only ever created by mailing_start for an existing
    # mailing, and deleting a mailing still cascades through the ORM).
    mailing = models.ForeignKey(Mailing, on_delete=models.CASCADE, related_name="deliveries",
                                db_index=False, db_constraint=False)
    subscription_id = models.BigIntegerField(null=True, blank=True)
    address = models.CharField(max_length=320)
    provider = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=40, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    relay = models.CharField(max_length=128, blank=True)
    last_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_reply = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(fields=["mailing", "address"],
                                    name="delivery_unique_address_in_mailing"),
        ]
        indexes = [
            models.Index(fields=["mailing", "state", "next_attempt_at"],
                         name="delivery_mailing_state_next"),
            models.Index(fields=["claimed_by"], condition=models.Q(state="claimed"),
                         name="delivery_claimed_by"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.id} to {self.address} ({self.state})"


class DeliveryAttempt(models.Model):
    """Append-only: one SMTP answer (or failure to get one) for a delivery."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts_log")
    at = models.DateTimeField()
    relay = models.CharField(max_length=128, blank=True)
    code = models.PositiveSmallIntegerField(null=True, blank=True)
    enhanced_code = models.CharField(max_length=16, blank=True)
    text = models.TextField(blank=True)
    kind = models.CharField(max_length=16, blank=True,
                            help_text=_("Classification (hard, soft, block, ...)."))
    outcome = models.CharField(max_length=16, help_text=_("Delivery state it led to."))

    class Meta:
        indexes = [models.Index(fields=["delivery", "at"], name="attempt_delivery_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.code} {self.outcome}"


from sending.canary_models import CanaryRun  # noqa: E402,F401 - a model of this app
from sending.warmup_models import WarmupPlan  # noqa: E402,F401 - a model of this app
