"""The canary of a mailing: which slice is out, what it showed, what comes next."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class CanaryRun(models.Model):
    """One mailing's canary sending (``sending.canary``).

    ``steps`` are cumulative shares of the audience in percent (e.g. 2, 10, 25, 50,
    100); ``step`` is the index of the slice that is out. ``results`` keeps one
    entry per evaluated slice (figures and decision); ``held_providers`` lists the
    providers whose share waits because they blocked the slice.
    """

    class State(models.TextChoices):
        SENDING = "sending", _("Slice going out")
        SETTLING = "settling", _("Waiting for answers and bounces")
        DONE = "done", _("Widened to the whole audience")
        PAUSED = "paused", _("Stopped the mailing: guardrail crossed")

    mailing = models.OneToOneField("sending.Mailing", on_delete=models.CASCADE,
                                   related_name="canary")
    state = models.CharField(max_length=16, choices=State.choices, default=State.SENDING)
    steps = models.JSONField(default=list)
    step = models.PositiveSmallIntegerField(default=0)
    settle_seconds = models.PositiveIntegerField(default=1800)
    released = models.PositiveIntegerField(default=0)
    settle_until = models.DateTimeField(null=True, blank=True)
    held_providers = models.JSONField(default=list, blank=True)
    results = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"canary of mailing {self.mailing_id}: step {self.step + 1} ({self.state})"
