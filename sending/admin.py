from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from redis.exceptions import RedisError

from deliverability.providers import provider_column
from sending.models import (
    Delivery,
    DeliveryAttempt,
    Mailing,
    Relay,
    RelayPool,
    TransactionalEmail,
)


class RelayForm(forms.ModelForm):
    class Meta:
        model = Relay
        fields = ("name", "host", "port", "tls_mode", "verify_certificate", "username",
                  "password_env", "helo_name", "source_address", "max_connections",
                  "max_rate_per_s", "priority", "enabled")
        help_texts = {"password_env": _(
            "Where the password is: RELAY_PASSWORD_<NAME>, an environment variable or a "
            "file of that name in RELAY_SECRETS_DIR. No other name is accepted.")}

    def clean_password_env(self):
        from sending.relays import RelaySecretError, password_name_check

        name = (self.cleaned_data.get("password_env") or "").strip()
        try:
            return password_name_check(name)
        except RelaySecretError as error:
            raise forms.ValidationError(str(error)) from None


class RelayInline(admin.TabularInline):
    model = Relay
    form = RelayForm
    extra = 0
    fields = ("name", "host", "port", "tls_mode", "verify_certificate", "username",
              "password_env", "helo_name", "max_connections", "open_sessions",
              "max_rate_per_s", "priority", "enabled")
    readonly_fields = ("open_sessions",)

    @admin.display(description=_("open sessions"))
    def open_sessions(self, obj) -> str:
        """Sessions open to this relay now, from every worker (its connection slots)."""
        from sending.slots import relay_slot_key, relay_slots

        if obj is None or not obj.pk:
            return "-"
        try:
            return str(relay_slots().held(relay_slot_key(obj.pool, obj)))
        except RedisError:
            return "?"


@admin.register(RelayPool)
class RelayPoolAdmin(admin.ModelAdmin):
    list_display = ("name", "purpose")
    inlines = [RelayInline]


@admin.register(TransactionalEmail)
class TransactionalEmailAdmin(admin.ModelAdmin):
    list_display = ("created_at", "purpose", "to", "subject", "state", "attempts", "relay")
    list_filter = ("state", "purpose")
    search_fields = ("to", "subject", "message_id")
    readonly_fields = [f.name for f in TransactionalEmail._meta.fields]

    def has_add_permission(self, request):
        return False


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("at", "relay", "code", "enhanced_code", "kind", "outcome", "text")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Mailing)
class MailingAdmin(admin.ModelAdmin):
    list_display = ("id", "reference", "pool", "state", "recipients", "started_at",
                    "finished_at")
    list_filter = ("state", "pool")
    readonly_fields = ("state", "recipients", "created_at", "started_at", "finished_at")


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The ledger. ``review`` rows were possibly sent when a worker died: check, then decide."""

    list_display = ("id", "mailing", "address", provider_column, "state", "attempts",
                    "last_code", "relay", "next_attempt_at", "sent_at")
    list_filter = ("state", "provider", "mailing")
    search_fields = ("address", "message_id")
    readonly_fields = [f.name for f in Delivery._meta.fields]
    inlines = [DeliveryAttemptInline]

    def has_add_permission(self, request):
        return False


from sending import warmup_admin  # noqa: E402,F401 - registers the warm-up plans
