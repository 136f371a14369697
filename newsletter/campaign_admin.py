"""Admin for editors: compose with a live preview, test, schedule, follow a campaign.

Every page is behind ``admin.site.admin_view`` (login, staff, CSRF); every
action is a POST that calls one service in ``newsletter.campaigns`` and is
written to the admin log (``LogEntry``). Composing needs ``change_campaign``;
scheduling, starting, pausing, resuming and cancelling need
``schedule_campaign`` (both held by the "editor" group).
"""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from newsletter.audience_admin import AudienceWidget, audience_count_view
from newsletter.campaign_models import Campaign, Layout
from newsletter.campaign_report import campaign_report
from newsletter.campaign_send import campaign_full_checklist, campaign_send_now, send_summary
from newsletter.campaigns import (
    CampaignError,
    campaign_assert_editable,
    campaign_cancel,
    campaign_duplicate,
    campaign_errors,
    campaign_pause,
    campaign_preview,
    campaign_resume,
    campaign_save,
    campaign_schedule,
    campaign_sync,
    campaign_test_send,
    campaign_unschedule,
    checklist_blocking,
    layout_validate,
    parse_local_time,
    preview_subscribers,
    preview_subscription_find,
    segment_attributes_validate,
)
from newsletter.compose_admin import ComposeEditor, live_preview_view, may_preview
from newsletter.models import Subscription
from newsletter.timezones import UnknownTimezone, timezone_choices, timezone_resolve

TRACKING_FIELDS = ("track_clicks", "track_opens", "tracking_privacy", "archive_public")
ENGAGEMENT_FIELDS = ("segment_clicked_campaign", "segment_opened_days")
PHONE_WIDTH = 390
DESKTOP_WIDTH = 760


class LayoutForm(forms.ModelForm):
    class Meta:
        model = Layout
        fields = ["name", "html", "css", "postal_address", "is_default"]
        widgets = {"html": forms.Textarea(attrs={"rows": 24, "cols": 100,
                                                 "style": "font-family: monospace"}),
                   "css": forms.Textarea(attrs={"rows": 12, "cols": 100,
                                                "style": "font-family: monospace"})}

    def clean(self):
        data = super().clean()
        probe = Layout(html=data.get("html") or "", postal_address=data.get("postal_address")
                       or "")
        problems = layout_validate(probe)
        if problems:
            raise ValidationError(problems)
        return data


@admin.register(Layout)
class LayoutAdmin(admin.ModelAdmin):
    form = LayoutForm
    list_display = ("name", "is_default", "postal_address", "updated_at")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if obj.is_default:
            Layout.objects.exclude(pk=obj.pk).update(is_default=False)


class ListDefaultSelect(forms.NullBooleanSelect):
    """Yes / no / the first list's default (instead of Django's "Unknown")."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", _("The list's default")), ("true", _("Yes")),
                        ("false", _("No"))]


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["name", "subject", "preheader", "layout", "body_format", "body", "text_body",
                  "from_name", "from_email", "reply_to", "lists", "exclude_lists",
                  "segment_attributes", "subscribed_after", "subscribed_before", "tags", "pool",
                  "canary", *TRACKING_FIELDS, *ENGAGEMENT_FIELDS]
        widgets = {
            "subject": forms.TextInput(attrs={"size": 80}),
            "preheader": forms.TextInput(attrs={"size": 80}),
            "body": ComposeEditor,
            "text_body": forms.Textarea(attrs={"rows": 8, "cols": 100,
                                               "style": "font-family: monospace"}),
            "lists": forms.CheckboxSelectMultiple,
            "exclude_lists": forms.CheckboxSelectMultiple,
            "track_clicks": ListDefaultSelect,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "segment_attributes" in self.fields:
            field = self.fields["segment_attributes"]
            field.widget = AudienceWidget(
                count_url=reverse("admin:newsletter_campaign_audience_count"))
            field.help_text = _("Only subscribers whose attributes match these rules. "
                                "Text compares without regard to case unless “match case” "
                                "is ticked; “does not equal” keeps those without the "
                                "attribute.")

    def clean_segment_attributes(self):
        value = self.cleaned_data.get("segment_attributes") or {}
        try:
            return segment_attributes_validate(value)
        except CampaignError as error:
            raise ValidationError(str(error)) from error

    def clean(self):
        data = super().clean()
        if self.instance.pk:
            try:
                campaign_assert_editable(self.instance)
            except CampaignError as error:
                raise ValidationError(str(error)) from error
        probe = Campaign(**{name: data.get(name) or "" for name in
                            ("subject", "preheader", "body", "text_body")})
        errors = campaign_errors(probe)
        for name, message in errors.items():
            if message.startswith("Personalisation") and name in self.fields:
                self.add_error(name, message)
        return data


def _local(when, tz_name: str) -> str:
    if when is None:
        return ""
    try:
        zone = zoneinfo.ZoneInfo(tz_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return f"{when.astimezone(zone):%Y-%m-%d %H:%M} {tz_name or 'UTC'}"


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "subject", "state_label", "scheduled_local", "tags", "report_link")
    list_filter = ("state", "lists")
    search_fields = ("name", "subject", "tags")
    readonly_fields = ("state_label", "scheduled_local")
    change_form_template = "admin/newsletter/campaign/change_form.html"
    save_on_top = False
    fieldsets = (
        (_("Content"), {"fields": ("name", "subject", "preheader", "layout", "body_format",
                                   "body", "text_body")}),
        (_("Sender"), {"fields": ("from_name", "from_email", "reply_to"),
                       "description": _("Empty fields take the first list's sender settings.")}),
        (_("Audience"), {"fields": ("lists", "exclude_lists", "segment_attributes",
                                    "subscribed_after", "subscribed_before")}),
        (_("Filing"), {"fields": ("tags", "pool", "canary")}),
        (_("Engagement segment"), {"fields": ENGAGEMENT_FIELDS}),
        (_("Tracking and archive"), {"fields": TRACKING_FIELDS}),
    )

    # -- list and form
    @admin.display(description=_("state"), ordering="state")
    def state_label(self, obj: Campaign) -> str:
        return obj.get_state_display()

    @admin.display(description=_("scheduled for"), ordering="scheduled_at")
    def scheduled_local(self, obj: Campaign) -> str:
        return _local(obj.scheduled_at, obj.schedule_timezone) or "-"

    @admin.display(description=_("report"))
    def report_link(self, obj: Campaign) -> str:
        return format_html('<a href="{}">{}</a>',
                           reverse("admin:newsletter_campaign_report", args=[obj.pk]),
                           _("report"))

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not obj.editable:
            return [f for fs in self.fieldsets for f in fs[1]["fields"]] + list(
                self.readonly_fields)
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.mailing_id is not None:
            return False  # its ledger and report stay
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        campaign_save(obj, user=request.user)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        from newsletter.campaigns import layout_default

        initial.setdefault("layout", layout_default().pk)
        return initial

    def add_view(self, request, form_url="", extra_context=None):
        return super().add_view(request, form_url, extra_context={
            **(extra_context or {}), **self._compose_context(request, None)})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        extra = {}
        if campaign is not None:
            campaign = campaign_sync(campaign)
            extra = {**self._tools_context(request, campaign),
                     **self._compose_context(request, campaign)}
        return super().change_view(request, object_id, form_url,
                                   extra_context={**(extra_context or {}), **extra})

    def _compose_context(self, request, campaign: Campaign | None) -> dict:
        """The live preview beside the body (only for who may write campaigns)."""
        # Only where the body is an editor (not read-only): that is what the pane follows.
        if campaign is None:
            writable = self.has_add_permission(request)
        else:
            writable = campaign.editable and self.has_change_permission(request, campaign)
        return {
            "live_preview_url": reverse("admin:newsletter_campaign_live_preview")
            if writable and may_preview(request.user) else "",
            "phone_width": PHONE_WIDTH,
            "desktop_width": DESKTOP_WIDTH,
        }

    def _tools_context(self, request, campaign: Campaign) -> dict:
        checks = campaign_full_checklist(campaign)
        subscription_id, preview_problem = _preview_as(request, campaign)
        chosen = _offered(campaign, subscription_id)
        saved = campaign.schedule_timezone or request.COOKIES.get("pw_tz") or ""
        zone = _zone_or(saved, settings.TIME_ZONE)
        local_value = ""
        if campaign.scheduled_at:
            local_value = campaign.scheduled_at.astimezone(
                zoneinfo.ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")
        # After a refused schedule the form shows what was typed (nothing is lost).
        typed_zone = request.GET.get("timezone", "")[:200]
        local_value = request.GET.get("when", "")[:40] or local_value
        return {
            "campaign": campaign,
            "checks": checks,
            "checks_blocking": bool(checklist_blocking(checks)),
            "preview_subscribers": chosen,
            "preview_subscriber_ids": {sub.id for sub in chosen},
            "preview_as": subscription_id,
            "preview_problem": preview_problem,
            "preview_email": request.GET.get("preview_email", ""),
            "frame_url": reverse("admin:newsletter_campaign_frame", args=[campaign.pk])
            + (f"?preview_as={subscription_id}" if subscription_id else ""),
            "action_url": reverse("admin:newsletter_campaign_action", args=[campaign.pk]),
            "preview_url": reverse("admin:newsletter_campaign_preview", args=[campaign.pk]),
            "report_url": reverse("admin:newsletter_campaign_report", args=[campaign.pk]),
            "send_now_url": reverse("admin:newsletter_campaign_send_now", args=[campaign.pk]),
            "started_local": _local(campaign.started_at, campaign.schedule_timezone),
            "timezones": timezone_choices(),
            "timezone": typed_zone or zone,
            "timezone_saved": bool(saved or typed_zone),
            "test_as": _test_as_label(subscription_id),
            "schedule_value": local_value,
            "scheduled_local": _local(campaign.scheduled_at, campaign.schedule_timezone),
            "can_schedule": request.user.has_perm("newsletter.schedule_campaign"),
            "can_test": request.user.has_perm("newsletter.change_campaign"),
            "pause_reason": campaign.mailing.pause_reason if campaign.mailing else "",
            "phone_width": PHONE_WIDTH,
            "desktop_width": DESKTOP_WIDTH,
        }

    # -- extra pages
    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(self.preview_view),
                 name="newsletter_campaign_preview"),
            path("<int:pk>/preview/frame/", view(self.frame_view),
                 name="newsletter_campaign_frame"),
            path("<int:pk>/action/", view(self.action_view),
                 name="newsletter_campaign_action"),
            path("<int:pk>/report/", view(self.report_view),
                 name="newsletter_campaign_report"),
            path("<int:pk>/send-now/", view(self.send_now_view),
                 name="newsletter_campaign_send_now"),
            path("audience-count/", view(audience_count_view),
                 name="newsletter_campaign_audience_count"),
            path("live-preview/", view(live_preview_view),
                 name="newsletter_campaign_live_preview"),
            *super().get_urls(),
        ]

    def _campaign(self, request, pk: int) -> Campaign:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(Campaign.objects.select_related("mailing", "layout"), pk=pk)

    def preview_view(self, request, pk: int):
        campaign = self._campaign(request, pk)
        subscription_id, preview_problem = _preview_as(request, campaign)
        try:
            preview = campaign_preview(campaign, subscription_id)
            error = ""
        except (CampaignError, ValueError) as problem:
            preview, error = None, str(problem)
        frame = reverse("admin:newsletter_campaign_frame", args=[pk])
        if subscription_id:
            frame += f"?preview_as={subscription_id}"
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {campaign.name}",
            "opts": self.model._meta,
            "campaign": campaign,
            "preview": preview,
            "error": error,
            "preview_subscribers": preview_subscribers(campaign),
            "preview_as": subscription_id,
            "preview_problem": preview_problem,
            "preview_email": request.GET.get("preview_email", ""),
            "frame_url": frame,
            "phone_width": PHONE_WIDTH,
            "desktop_width": DESKTOP_WIDTH,
        }
        return render(request, "newsletter/admin/campaign_preview.html", context)

    def frame_view(self, request, pk: int):
        campaign = self._campaign(request, pk)
        try:
            html = campaign_preview(campaign, _int(request.GET.get("preview_as"))).html
        except (CampaignError, ValueError) as problem:
            html = format_html("<p style='color:#b91c1c;font-family:sans-serif'>{}</p>",
                               str(problem))
        response = HttpResponse(html, content_type="text/html; charset=utf-8")
        # Mail HTML may carry anything an editor typed: no scripts, no forms, no requests out.
        response["Content-Security-Policy"] = ("default-src 'none'; img-src * data:; "
                                               "style-src 'unsafe-inline'; sandbox")
        response["X-Frame-Options"] = "SAMEORIGIN"  # shown in our own preview iframes
        return response

    def report_view(self, request, pk: int):
        campaign = campaign_sync(self._campaign(request, pk))
        report = campaign_report(campaign)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Report: {campaign.name}",
            "opts": self.model._meta,
            "campaign": campaign,
            "report": report,
            "live": campaign.state == Campaign.State.SENDING,
            "scheduled_local": _local(campaign.scheduled_at, campaign.schedule_timezone),
            "kinds": ("hard", "soft", "block"),
        }
        return render(request, "newsletter/admin/campaign_report.html", context)

    def send_now_view(self, request, pk: int):
        """The confirmation before "Send now": who, from whom, and every open warning."""
        campaign = campaign_sync(self._campaign(request, pk))
        if not request.user.has_perm("newsletter.schedule_campaign"):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Send “{campaign.name}” now?",
            "opts": self.model._meta,
            "campaign": campaign,
            "summary": send_summary(campaign) if campaign.editable else None,
            "action_url": reverse("admin:newsletter_campaign_action", args=[pk]),
            "back_url": reverse("admin:newsletter_campaign_change", args=[pk]),
            "breakers_url": _breakers_url(),
            "timezone": campaign.schedule_timezone or request.COOKIES.get("pw_tz") or "UTC",
        }
        return render(request, "newsletter/admin/campaign_send_now.html", context)

    def action_view(self, request, pk: int):
        return _action(self, request, pk)


def _breakers_url() -> str:
    try:
        return reverse("breaker-list")
    except NoReverseMatch:
        return ""


def _offered(campaign: Campaign, subscription_id: int | None) -> list:
    """The subscribers to preview as: the audience's first ones, and the one asked for."""
    offered = preview_subscribers(campaign)
    if subscription_id and subscription_id not in {sub.id for sub in offered}:
        chosen = Subscription.objects.select_related("subscriber").filter(
            pk=subscription_id).first()
        if chosen is not None:
            offered = [chosen, *offered]
    return offered


def _preview_as(request, campaign: Campaign) -> tuple[int | None, str]:
    """The subscription chosen for the preview (from the list, or by any address)."""
    address = request.GET.get("preview_email", "").strip()
    if address:
        try:
            return preview_subscription_find(campaign, address), ""
        except CampaignError as error:
            return None, str(error)
    return _int(request.GET.get("preview_as")), ""


def _zone_or(name: str, default: str) -> str:
    try:
        return timezone_resolve(name)
    except UnknownTimezone:
        return default


def _test_as_label(subscription_id: int | None) -> str:
    """Whom a test is personalised as: "Ann <ann@example.org>", or the sample reader."""
    row = Subscription.objects.filter(id=subscription_id).values_list(
        "subscriber__name", "subscriber__email").first() if subscription_id else None
    if row is None:
        return "the sample reader (no subscriber chosen)"
    return f"{row[0]} <{row[1]}>" if row[0] else row[1]


def _int(value) -> int | None:
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None


ACTIONS = {"test", "schedule", "send_now", "unschedule", "pause", "resume", "cancel", "duplicate"}
NEEDS = {"test": "newsletter.change_campaign", "duplicate": "newsletter.add_campaign"}


def _action(model_admin: CampaignAdmin, request, pk: int):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied  # before anything else: not even whether the campaign exists
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    campaign = get_object_or_404(Campaign, pk=pk)
    action = request.POST.get("action", "")
    back = reverse("admin:newsletter_campaign_change", args=[pk])
    if action not in ACTIONS:
        messages.error(request, "Unknown action.")
        return HttpResponseRedirect(back)
    needed = NEEDS.get(action, "newsletter.schedule_campaign")
    if not request.user.has_perm(needed):
        raise PermissionDenied("You may not do this with campaigns.")
    response = HttpResponseRedirect(back)
    try:
        if action == "test":
            addresses = request.POST.get("addresses", "").replace(",", "\n").splitlines()
            subscription_id = _int(request.POST.get("preview_as"))
            if request.POST.get("test_as_email", "").strip():
                subscription_id = preview_subscription_find(
                    campaign, request.POST["test_as_email"][:320])
            count = campaign_test_send(campaign, addresses, subscription_id)
            done = (f"Test sent to {count} address{'es' if count != 1 else ''}: "
                    + ", ".join(a.strip() for a in addresses if a.strip())
                    + f", personalised as {_test_as_label(subscription_id)}.")
        elif action == "schedule":
            typed = request.POST.get("timezone", "UTC")
            if request.POST.get("now"):  # "Send now" confirms first, on its own page
                return HttpResponseRedirect(reverse("admin:newsletter_campaign_send_now",
                                                    args=[pk]))
            try:
                tz_name = timezone_resolve(typed)
                when = parse_local_time(request.POST.get("when", ""), tz_name)
            except (UnknownTimezone, CampaignError) as error:
                messages.error(request, str(error))
                return HttpResponseRedirect(back + "?" + urlencode(
                    {"when": request.POST.get("when", "")[:40], "timezone": typed[:200]})
                    + "#schedule")
            campaign = campaign_schedule(campaign, when, tz_name)
            done = f"Scheduled for {_local(campaign.scheduled_at, tz_name)}."
            response.set_cookie("pw_tz", tz_name, max_age=365 * 86400, samesite="Lax",
                                httponly=True)
        elif action == "send_now":
            tz_name = _zone_or(request.POST.get("timezone", ""), "UTC")
            campaign = campaign_send_now(
                campaign, expected_recipients=_int(request.POST.get("recipients")),
                tz_name=tz_name)
            done = ("Sending started: the campaign is being handed to the sending engine "
                    "now.")
        elif action == "duplicate":
            copy = campaign_duplicate(campaign, user=request.user)
            model_admin.log_addition(request, copy, f"Duplicated from campaign {campaign.pk}.")
            messages.success(request, f"“{copy.name}” is a new draft: edit it here.")
            return HttpResponseRedirect(reverse("admin:newsletter_campaign_change",
                                                args=[copy.pk]))
        elif action == "unschedule":
            campaign_unschedule(campaign)
            done = "Unscheduled: the campaign is a draft again."
        elif action == "pause":
            campaign_pause(campaign, reason=f"paused by {request.user.get_username()}")
            done = "Paused: no further messages go out until you resume."
        elif action == "resume":
            campaign_resume(campaign)
            done = "Resumed."
        else:
            campaign_cancel(campaign)
            done = "Cancelled: messages not yet sent will not be sent."
    except CampaignError as error:
        messages.error(request, str(error))
        return HttpResponseRedirect(back)
    model_admin.log_change(request, campaign, f"[{action}] {done}")
    messages.success(request, done)
    return response
