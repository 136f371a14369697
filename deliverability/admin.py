from django import forms
from django.contrib import admin
from django.contrib.admin.models import DELETION, LogEntry
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from deliverability.models import (
    BounceEvent,
    BreakerRuleOverride,
    BreakerTransition,
    InboundMessage,
    Suppression,
)
from deliverability.providers import provider_column

RAW_DISPLAY_BYTES = 256 * 1024


class RemovalForm(forms.Form):
    reason = forms.CharField(max_length=400, label=_("Why are these addresses removed?"),
                             widget=forms.TextInput(attrs={"size": 80}))


@admin.action(description=_("Remove from the suppression list (with a reason)"),
              permissions=["delete"])
def remove_suppressions(modeladmin, request, queryset):
    form = RemovalForm(request.POST if "reason" in request.POST else None)
    if form.is_valid():
        reason = form.cleaned_data["reason"]
        # The admin history keeps who removed what and why; the row itself is gone.
        LogEntry.objects.log_actions(request.user.pk, queryset, DELETION,
                                     change_message=f"removed from suppression: {reason}")
        count, _ignored = queryset.delete()
        modeladmin.message_user(request, _("%d address(es) removed.") % count)
        return None
    return TemplateResponse(request, "admin/deliverability/suppression/remove.html", {
        **modeladmin.admin_site.each_context(request),
        "title": _("Remove from the suppression list"), "form": form, "queryset": queryset,
        "opts": modeladmin.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    })


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ("address", "reason", "source", "created_at")
    list_filter = ("reason", "source")
    search_fields = ("address",)
    readonly_fields = ("created_at",)
    actions = [remove_suppressions]


@admin.register(BreakerTransition)
class BreakerTransitionAdmin(admin.ModelAdmin):
    list_display = ("created_at", provider_column, "pool", "from_state", "to_state", "level",
                    "klass", "actor")
    list_filter = ("to_state", "klass", "pool", "provider")
    search_fields = ("provider", "reason", "reply")
    readonly_fields = [f.name for f in BreakerTransition._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- bounce intake -------------------------------------------------------------

class BounceEventInline(admin.TabularInline):
    model = BounceEvent
    extra = 0
    can_delete = False
    fields = ("position", "kind", "reason", "recipient", "address", "status", "provider",
              "delivery_id", "action", "action_detail")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.action(description=_("Reclassify (re-run the classifier on the stored message)"),
              permissions=["reclassify"])
def reclassify_messages(modeladmin, request, queryset):
    from deliverability.intake import reclassify

    messages_ = InboundMessage.objects.filter(pk__in=queryset.values("pk"))
    count = 0
    for message in messages_:
        reclassify(message)
        count += 1
    modeladmin.message_user(request, _("%d message(s) reclassified.") % count)


class NeedsReviewFilter(admin.SimpleListFilter):
    """Reports that would have acted but are tied to no delivery of ours (intake)."""

    title = _("review")
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("yes", _("Needs review")), ("no", _("No review"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.exclude(review_reason="")
        if self.value() == "no":
            return queryset.filter(review_reason="")
        return queryset


@admin.action(description=_("Mark as reviewed (nothing is done about the report)"),
              permissions=["reclassify"])
def mark_reviewed(modeladmin, request, queryset):
    from django.contrib.admin.models import CHANGE

    rows = InboundMessage.objects.filter(pk__in=queryset.values("pk")).exclude(review_reason="")
    LogEntry.objects.log_actions(request.user.pk, rows, CHANGE,
                                 change_message="reviewed: nothing done")
    count = rows.update(review_reason="")
    modeladmin.message_user(request, _("%d message(s) marked as reviewed.") % count)


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    list_display = ("received_at", "source", "outcome", "review_reason", "subject", "size",
                    "processed_at")
    list_filter = (NeedsReviewFilter, "source", "outcome")
    search_fields = ("key", "message_id", "subject", "envelope_recipients")
    fields = ("received_at", "source", "outcome", "review_reason", "error", "key",
              "message_id", "subject", "envelope_recipients", "size", "processed_at",
              "raw_message")
    readonly_fields = fields
    inlines = [BounceEventInline]
    actions = [reclassify_messages, mark_reviewed]

    def get_queryset(self, request):
        # The changelist never needs the compressed bytes.
        qs = super().get_queryset(request)
        return qs if request.resolver_match.url_name.endswith("_change") else qs.defer(
            "raw_compressed")

    @admin.display(description=_("Raw message"))
    def raw_message(self, obj):
        text = obj.raw[:RAW_DISPLAY_BYTES].decode("utf-8", "replace")
        if obj.size > RAW_DISPLAY_BYTES:
            text += f"\n[… {obj.size - RAW_DISPLAY_BYTES} more bytes]"
        # format_html escapes: a bounce quotes attacker-controlled HTML.
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_reclassify_permission(self, request):
        return request.user.has_perm("deliverability.reclassify_inboundmessage")


@admin.action(description=_("Reclassify the messages of the selected events"),
              permissions=["reclassify"])
def reclassify_events(modeladmin, request, queryset):
    reclassify_messages(modeladmin, request, InboundMessage.objects.filter(
        pk__in=queryset.values("message_id")))


@admin.register(BounceEvent)
class BounceEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "reason", "address", "status", provider_column,
                    "action", "campaign", "delivery_id", "message_link")
    list_filter = ("kind", "reason", "provider", "action", "campaign", "mailing_id",
                   "message__source")
    search_fields = ("address", "recipient", "diagnostic", "=delivery_id")
    readonly_fields = [f.name for f in BounceEvent._meta.fields] + ["message_link"]
    list_select_related = False
    actions = [reclassify_events]

    @admin.display(description=_("Message"))
    def message_link(self, obj):
        url = reverse("admin:deliverability_inboundmessage_change", args=[obj.message_id])
        return format_html('<a href="{}">{}</a>', url, obj.message_id)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_reclassify_permission(self, request):
        return request.user.has_perm("deliverability.reclassify_inboundmessage")


class BreakerRuleOverrideForm(forms.ModelForm):
    class Meta:
        model = BreakerRuleOverride
        fields = ["rule_id", "providers", "code", "pattern", "klass", "trigger_count",
                  "trigger_window", "ladder", "enabled", "note"]

    def clean_pattern(self):
        return _regex(self.cleaned_data["pattern"])

    def clean_code(self):
        return _regex(self.cleaned_data["code"]) if self.cleaned_data["code"] else ""

    def clean_providers(self):
        from deliverability.breaker.rules import shipped

        known = set(shipped()["providers"])
        names = [p.strip() for p in self.cleaned_data["providers"].split(",") if p.strip()]
        unknown = [p for p in names if p not in known]
        if unknown:
            raise forms.ValidationError(f"unknown provider(s): {', '.join(unknown)}; known: "
                                        f"{', '.join(sorted(known))}")
        return ",".join(names)

    def clean_trigger_window(self):
        return _durations(self.cleaned_data["trigger_window"], allow_manual=False)

    def clean_ladder(self):
        return _durations(self.cleaned_data["ladder"], allow_manual=True)


def _regex(value: str) -> str:
    import re

    try:
        re.compile(value, re.IGNORECASE)
    except re.error as exc:
        raise forms.ValidationError(f"not a valid regular expression: {exc}") from None
    if "\\\\" in value:
        raise forms.ValidationError("a doubled backslash matches a literal backslash: "
                                    "write \\d, not \\\\d")
    return value


def _durations(value: str, *, allow_manual: bool) -> str:
    from deliverability.breaker.rules import duration

    steps = [s.strip() for s in value.split(",") if s.strip()]
    for step in steps:
        if allow_manual and step == "manual":
            continue
        try:
            duration(step)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None
    return ",".join(steps)


@admin.register(BreakerRuleOverride)
class BreakerRuleOverrideAdmin(admin.ModelAdmin):
    form = BreakerRuleOverrideForm
    list_display = ("rule_id", "providers", "klass", "pattern", "enabled", "updated_at")
    list_filter = ("enabled", "klass")
    search_fields = ("rule_id", "pattern", "note")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        _rules_changed()

    def delete_model(self, request, obj):
        super().delete_model(request, obj)
        _rules_changed()


def _rules_changed() -> None:
    from deliverability import gate
    from deliverability.breaker import rules

    rules.reload()
    gate.forget()
