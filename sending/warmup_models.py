"""A warm-up plan: the daily per-provider cap of a new relay IP or sending domain."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class WarmupPlan(models.Model):
    """One target being warmed up, on one schedule of ``sending/warmup.toml``.

    ``step`` is the 0-based index into the schedule's caps; ``evaluated_through`` is
    the last UTC day whose figures moved (or held) it. ``history`` keeps one entry
    per evaluated day: the figures and the decision, for the operator.
    """

    class Kind(models.TextChoices):
        IP = "ip", _("Relay IP (source address)")
        DOMAIN = "domain", _("Sending domain (From / DKIM)")

    kind = models.CharField(max_length=8, choices=Kind.choices)
    target = models.CharField(max_length=255, help_text=_(
        "The relay's source address (e.g. 192.0.2.10) or the From domain (news.example.org)."))
    schedule = models.CharField(max_length=64, blank=True, help_text=_(
        "A schedule of sending/warmup.toml; empty: new_ip or new_domain by kind."))
    step = models.PositiveSmallIntegerField(default=0)
    started_on = models.DateField(help_text=_("First UTC day of the plan."))
    evaluated_through = models.DateField(null=True, blank=True)
    active = models.BooleanField(default=True)
    history = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "target"]
        constraints = [models.UniqueConstraint(fields=["kind", "target"],
                                               name="warmup_plan_unique_target")]

    def __str__(self) -> str:
        return f"warm-up of {self.kind} {self.target} (step {self.step + 1})"

    def save(self, *args, **kwargs):
        if not self.schedule:
            self.schedule = "new_ip" if self.kind == self.Kind.IP else "new_domain"
        self.target = self.target.strip().lower()
        super().save(*args, **kwargs)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_ipv46_address

        from sending.warmup import schedules_data

        target = (self.target or "").strip().lower()
        if self.kind == self.Kind.IP:
            try:
                validate_ipv46_address(target)
            except ValidationError:
                raise ValidationError({"target": _("An IP address (the relay's source "
                                                   "address).")}) from None
        elif "@" in target or "." not in target or " " in target:
            raise ValidationError({"target": _("A domain name such as news.example.org.")})
        if self.schedule and self.schedule not in schedules_data()["schedules"]:
            raise ValidationError({"schedule": _("No such schedule in sending/warmup.toml.")})
