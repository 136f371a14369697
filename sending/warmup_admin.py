"""Admin of warm-up plans (registered from ``sending.admin``)."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _

from sending.warmup_models import WarmupPlan


@admin.register(WarmupPlan)
class WarmupPlanAdmin(admin.ModelAdmin):
    list_display = ("kind", "target", "schedule", "step_shown", "started_on",
                    "evaluated_through", "active")
    list_filter = ("kind", "active")
    fields = ("kind", "target", "schedule", "started_on", "active", "step", "evaluated_through",
              "history_shown")
    readonly_fields = ("evaluated_through", "history_shown")

    @admin.display(description=_("step"))
    def step_shown(self, obj) -> int:
        return obj.step + 1

    @admin.display(description=_("days evaluated"))
    def history_shown(self, obj) -> str:
        rows = [(h["day"], h["decision"], h["from"], h["to"], h["why"])
                for h in reversed(obj.history or [])]
        return format_html_join("<br>", "{}: {} (step {} &rarr; {}): {}", rows) or "-"
