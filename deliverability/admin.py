from django.contrib import admin

from deliverability.models import BreakerTransition, Suppression


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("address", "reason", "source", "created_at")
    list_filter = ("reason",)
    search_fields = ("address",)
    readonly_fields = ("created_at",)


@admin.register(BreakerTransition)
class BreakerTransitionAdmin(admin.ModelAdmin):
    list_display = ("created_at", "provider", "pool", "from_state", "to_state", "level", "klass",
                    "actor")
    list_filter = ("to_state", "klass", "pool", "provider")
    search_fields = ("provider", "reason", "reply")
    readonly_fields = [f.name for f in BreakerTransition._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
