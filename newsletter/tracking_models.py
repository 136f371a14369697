"""Click and open tracking: the links of a campaign, counts, and (linked mode) events.

Imported by ``newsletter.models``. Written only by ``newsletter.tracking``: the
redirect and the pixel push raw hits to Redis, and the periodic drain turns them
into these rows. Counts carry no subscriber; ``TrackingEvent`` does, only for
campaigns in linked mode, and only until the retention period has passed.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

OPEN_INDEX = -1  # link_index of an open in counts and events
PRIVACY_CHOICES = [("counts", _("Counts only (no link to the subscriber)")),
                   ("linked", _("Linked to the subscriber (for segments), for a while"))]


class TrackedLink(models.Model):
    """One distinct link target of a started campaign; the only places /c/ redirects to."""

    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE,
                                 related_name="tracked_links")
    index = models.PositiveIntegerField()
    url = models.TextField()

    class Meta:
        ordering = ["campaign", "index"]
        constraints = [models.UniqueConstraint(fields=["campaign", "index"],
                                               name="tracked_link_unique_index")]

    def __str__(self) -> str:
        return f"{self.campaign_id}#{self.index} {self.url}"


class TrackingCount(models.Model):
    """Hits of one kind, per link, provider, hour and verdict (human, or why machine)."""

    class Kind(models.TextChoices):
        OPEN = "open", _("Open")
        CLICK = "click", _("Click")

    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE,
                                 related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    link_index = models.IntegerField(default=OPEN_INDEX)
    provider = models.CharField(max_length=64, blank=True)
    hour = models.DateTimeField(help_text=_("Start of the hour (UTC) of the hits."))
    machine_reason = models.CharField(max_length=32, blank=True,
                                      help_text=_("Empty: a human. Otherwise the rule that "
                                                  "judged it a machine."))
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["campaign", "kind", "link_index", "provider", "hour", "machine_reason"],
            name="tracking_count_unique_key")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.kind}#{self.link_index} {self.count}"

    @property
    def machine(self) -> bool:
        return bool(self.machine_reason)


class TrackingUnique(models.Model):
    """Distinct human openers or clickers, per provider ('' = all), from Redis HyperLogLogs.

    A HyperLogLog holds hashed registers, never the ids it was fed, so counts-only
    campaigns get unique figures without keeping who clicked (error about 1 %).
    """

    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE,
                                 related_name="+", db_index=False)
    kind = models.CharField(max_length=8, choices=TrackingCount.Kind.choices)
    provider = models.CharField(max_length=64, blank=True)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "kind", "provider"],
                                               name="tracking_unique_key")]

    def __str__(self) -> str:
        return f"{self.campaign_id} unique {self.kind} {self.provider or 'all'}: {self.count}"


class TrackingEvent(models.Model):
    """One hit linked to a subscription (campaigns in linked mode only), for segments.

    Deleted by ``tracking_events_expire`` after ``TRACKING_LINKED_RETENTION_DAYS``;
    the counts stay.
    """

    campaign = models.ForeignKey("newsletter.Campaign", on_delete=models.CASCADE,
                                 related_name="+", db_index=False)
    subscription_id = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=TrackingCount.Kind.choices)
    link_index = models.IntegerField(default=OPEN_INDEX)
    at = models.DateTimeField()
    machine = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["campaign", "kind"], name="tracking_event_campaign"),
                   models.Index(fields=["kind", "at"], name="tracking_event_kind_at")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.kind} by {self.subscription_id} at {self.at}"


class TrackingBatch(models.Model):
    """A drained batch of hits, by digest: written with its counts, so none counts twice."""

    digest = models.CharField(max_length=64, unique=True)
    hits = models.PositiveIntegerField(default=0)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = _("tracking batches")

    def __str__(self) -> str:
        return f"batch {self.digest[:12]} ({self.hits} hits)"
