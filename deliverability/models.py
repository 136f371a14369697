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
