"""API tokens (stored hashed), stored transactional templates, idempotent sends."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    """A user's key to the API. Only its SHA-256 is stored; the key is shown once.

    The key is ``pw_<prefix>_<secret>``: the prefix finds the row, the hash of the
    whole key is compared in constant time. A token acts with its user's model
    permissions, narrowed to its scopes.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Read everything the user may view")
        SUBSCRIBERS = "subscribers", _("Write subscribers, subscriptions, suppressions")
        CAMPAIGNS = "campaigns", _("Write campaigns")
        TRANSACTIONAL = "transactional", _("Send transactional mail")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100, help_text=_("What uses it, e.g. 'shop'."))
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_sha256 = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.name} (pw_{self.prefix}_…)"

    @property
    def active(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class TransactionalTemplate(models.Model):
    """A stored mail for ``POST /api/v1/tx/``; ``{{ subscriber.x }}`` is the posted data."""

    slug = models.SlugField(max_length=64, unique=True)
    subject = models.CharField(max_length=998)
    body_text = models.TextField()
    body_html = models.TextField(blank=True)
    from_email = models.CharField(max_length=320, blank=True,
                                  help_text=_("Empty: the service's default sender."))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("transactional template")
        verbose_name_plural = _("transactional templates")

    def __str__(self) -> str:
        return self.slug


class IdempotentSend(models.Model):
    """One ``Idempotency-Key`` of one user: the same key again answers the first mail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_sha256 = models.CharField(max_length=64)
    email_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"],
                                               name="idempotent_send_unique_key")]

    def __str__(self) -> str:
        return f"{self.key} -> mail {self.email_id}"
