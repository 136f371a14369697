"""The suppression list: addresses we never send bulk mail to again.

It lives here because deliverability decides it (hard bounces, complaints,
repeated soft bounces); other apps ask through ``deliverability.suppression``.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Suppression(models.Model):
    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("Hard bounce")
        SOFT_BOUNCES = "soft_bounces", _("Repeated soft bounces")
        COMPLAINT = "complaint", _("Complaint")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        ERASED = "erased", _("Erased at the subscriber's request")
        MANUAL = "manual", _("Added by an operator")

    # Normalised (lower-cased domain) address; see deliverability.suppression.normalise.
    address = models.CharField(max_length=320, unique=True)
    reason = models.CharField(max_length=32, choices=Reason.choices)
    detail = models.TextField(blank=True)
    source = models.CharField(max_length=64, blank=True, help_text=_("What caused it."))
    source_event_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.address} ({self.reason})"


class BreakerTransition(models.Model):
    """Audit row for every change of a provider x pool breaker (the state itself is in Redis)."""

    provider = models.CharField(max_length=255, db_index=True)
    pool = models.CharField(max_length=64)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    level = models.PositiveSmallIntegerField(default=0)
    klass = models.CharField("class", max_length=32, blank=True)
    rule_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    reply = models.TextField(blank=True, help_text=_("The SMTP answer that caused it."))
    until = models.DateTimeField(null=True, blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text=_("Operator, or empty."))
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("manage_breaker", "Can pause, resume and acknowledge providers")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.pool}: {self.from_state} -> {self.to_state}"


class InboundMessage(models.Model):
    """A bounce, complaint or reply as it arrived: stored before anything is decided.

    ``key`` is the sha256 of the raw bytes, so the same message arriving twice
    (an MTA retry, a re-polled mailbox) is recognised and changes nothing.
    """

    class Source(models.TextChoices):
        SMTP = "smtp", _("SMTP listener")
        PIPE = "pipe", _("MTA pipe")
        IMAP = "imap", _("IMAP mailbox")
        ADMIN = "admin", _("Operator")

    key = models.CharField(max_length=64, unique=True)
    raw_compressed = models.BinaryField(help_text=_("zlib-compressed raw bytes."))
    size = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=8, choices=Source.choices)
    envelope_recipients = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=64, blank=True,
                               help_text=_("Kinds found, e.g. 'hard' or 'unknown'."))
    error = models.TextField(blank=True)
    # Why nothing was done about a report that would act: not tied to a delivery of ours
    # by something an outsider cannot forge (see intake.tie_to_delivery). Empty: no review.
    review_reason = models.CharField(max_length=255, blank=True)
    # Bytes the raw message takes in the database (compressed); 0 once pruned.
    stored_bytes = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [("reclassify_inboundmessage", "Can reclassify stored bounces")]
        indexes = [models.Index(fields=["review_reason"], condition=~models.Q(review_reason=""),
                                name="inbound_review_idx")]

    def __str__(self) -> str:
        return f"inbound {self.id} ({self.source}, {self.outcome or 'unprocessed'})"

    @property
    def raw(self) -> bytes:
        """The message as received; empty once pruned (deliverability.retention)."""
        import zlib

        data = bytes(self.raw_compressed or b"")
        return zlib.decompress(data) if data else b""


class BounceEvent(models.Model):
    """One recipient's result in an inbound message, and what was done about it."""

    class Action(models.TextChoices):
        NONE = "none", _("Nothing")
        SUPPRESSED = "suppressed", _("Address suppressed")
        SOFT_COUNTED = "soft_counted", _("Soft bounce counted")
        BREAKER = "breaker", _("Counted against the provider")
        COMPLAINT = "complaint", _("Complaint: unsubscribed and suppressed")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribe request: that subscription ended")

    message = models.ForeignKey(InboundMessage, on_delete=models.CASCADE, related_name="events")
    position = models.PositiveSmallIntegerField(default=0)
    # Matched by VERP; ids of sending's rows, kept as plain numbers (no import of sending).
    delivery_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    mailing_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    campaign = models.CharField(max_length=128, blank=True)
    recipient = models.CharField(max_length=320, blank=True, help_text=_("As the report names it."))
    # The normalised address acted on: the delivery's when matched, else the recipient.
    address = models.CharField(max_length=320, blank=True, db_index=True)
    kind = models.CharField(max_length=16, db_index=True)
    reason = models.CharField(max_length=32, blank=True, db_index=True)
    status = models.CharField(max_length=16, blank=True)
    smtp_code = models.CharField(max_length=8, blank=True)
    hard = models.BooleanField(default=False)
    diagnostic = models.TextField(blank=True)
    remote_mta = models.CharField(max_length=255, blank=True)
    provider = models.CharField(max_length=64, blank=True, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices, blank=True)
    action_detail = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["message", "position"],
                                    name="bounceevent_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}/{self.reason} {self.recipient}"


class BreakerRuleOverride(models.Model):
    """An operator's breaker rule: replaces the shipped rule with the same id, or adds one.

    Added rules are tried before the shipped ones, so a provider's new reply text
    can be taught without a release.
    """

    CLASSES = [(c, c) for c in ("throttle", "connection", "reputation", "block", "auth_config",
                                "content", "recipient_hard", "recipient_soft", "transient",
                                "unknown_5xx")]

    rule_id = models.SlugField(max_length=64, unique=True,
                               help_text=_("Same id as a shipped rule to replace it."))
    providers = models.CharField(max_length=255, blank=True,
                                 help_text=_("Provider keys, comma-separated; empty: any."))
    code = models.CharField(max_length=32, blank=True,
                            help_text=_("Regular expression on the reply code, e.g. ^5"))
    pattern = models.CharField(max_length=1000,
                               help_text=_("Regular expression (case-insensitive) on the "
                                           "reply text."))
    klass = models.CharField("class", max_length=32, choices=CLASSES)
    trigger_count = models.PositiveIntegerField(null=True, blank=True)
    trigger_window = models.CharField(max_length=16, blank=True, help_text=_("e.g. 30m"))
    ladder = models.CharField(max_length=255, blank=True,
                              help_text=_("Cool-downs, comma-separated, e.g. 4h,12h,manual"))
    enabled = models.BooleanField(default=True)
    note = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["rule_id"]

    def __str__(self) -> str:
        return self.rule_id

    def as_rule_data(self) -> dict:
        data = {"id": self.rule_id, "pattern": self.pattern, "class": self.klass,
                "providers": [p.strip() for p in self.providers.split(",") if p.strip()]}
        if self.code:
            data["code"] = self.code
        if self.trigger_count and self.trigger_window:
            data["trigger"] = {"count": self.trigger_count, "window": self.trigger_window}
        if self.ladder:
            data["ladder"] = [s.strip() for s in self.ladder.split(",") if s.strip()]
        return data
