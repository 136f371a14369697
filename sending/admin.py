from django.contrib import admin

from sending.models import Relay, RelayPool, TransactionalEmail


class RelayInline(admin.TabularInline):
    model = Relay
    extra = 0
    fields = ("name", "host", "port", "tls_mode", "verify_certificate", "username",
              "password_env", "helo_name", "max_connections", "max_rate_per_s", "priority",
              "enabled")


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
