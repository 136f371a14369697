from django.contrib import admin

from deliverability.models import Suppression


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("address", "reason", "source", "created_at")
    list_filter = ("reason",)
    search_fields = ("address",)
    readonly_fields = ("created_at",)
