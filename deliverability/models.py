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
