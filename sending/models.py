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
