"""Admin: lists (with the embeddable form), subscribers, the consent log, imports."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import escape, format_html
from django.utils.translation import gettext_lazy as _

from config.roles import PREFERENCES_PAGE_PERMISSIONS
from newsletter import links
from newsletter.imports import subscribers_export_csv
from newsletter.models import (
    ConsentRecord,
    ConsentText,
    MailingList,
    Subscriber,
    SubscriberImport,
    Subscription,
)
from newsletter.services import (
    Client,
    consent_text_current,
    subscriber_erase,
    subscription_unsubscribe,
)


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "double_opt_in", "public", "confirmed_count", "signup_link")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("signup_link", "embed_snippet")
    actions = ["export_csv"]
    fieldsets = (
        (None, {"fields": ("name", "slug", "description", "public", "double_opt_in")}),
        (_("Sender"), {"fields": ("from_name", "from_email", "reply_to")}),
        (_("Consent"), {"fields": ("consent_text",)}),
        (_("Signup form"), {"fields": ("signup_link", "embed_snippet")}),
        (_("Tracking and archive"), {"fields": ("track_clicks", "tracking_privacy",
                                                "archive_public", "personalisation_defaults")}),
    )

    @admin.display(description=_("confirmed"))
    def confirmed_count(self, obj: MailingList) -> int:
        return obj.subscriptions.filter(status=Subscription.Status.CONFIRMED).count()

    @admin.display(description=_("signup page"))
    def signup_link(self, obj: MailingList) -> str:
        if not obj.pk:
            return "-"
        url = links.signup_url(obj)
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)

    @admin.display(description=_("HTML to embed on your site"))
    def embed_snippet(self, obj: MailingList) -> str:
        if not obj.pk:
            return _("Save the list first.")
        snippet = render_to_string("newsletter/embed_snippet.html", {
            "action": links.absolute(reverse("newsletter:signup-embedded", args=[obj.slug])),
            "consent": consent_text_current(obj)})
        return format_html(
            '<textarea readonly rows="14" cols="90" style="font-family: monospace">{}</textarea>'
            '<p class="help">{}</p>', escape(snippet),  # rendered HTML is "safe": show it as text
            _("Paste this into any page. It posts to this service, which applies the same "
              "limits, honeypot and double opt-in as the signup page."))

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm("project.export_subscribers")

    @admin.action(description=_("Export subscribers as CSV (one list)"), permissions=["export"])
    def export_csv(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, _("Select exactly one list to export."), messages.ERROR)
            return None
        mailing_list = queryset.get()
        response = StreamingHttpResponse(subscribers_export_csv(mailing_list=mailing_list),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{mailing_list.slug}-subscribers.csv"')
        return response


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    fields = ("mailing_list", "status", "created_at", "confirmed_at", "unsubscribed_at")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ("email", "name", "created_at")
    search_fields = ("email", "name")
    readonly_fields = ("email", "created_at", "updated_at", "preferences_link")
    fields = ("email", "name", "attributes", "created_at", "updated_at", "preferences_link")
    inlines = [SubscriptionInline]
    actions = ["erase"]

    def has_add_permission(self, request):
        return False  # people sign up themselves or come in through an import

    def get_fields(self, request, obj=None):
        # The link is the subscriber's own credential: it exports, erases and changes
        # subscriptions, so only someone allowed all three through the admin sees it.
        fields = super().get_fields(request, obj)
        if request.user.has_perms(PREFERENCES_PAGE_PERMISSIONS):
            return fields
        return [f for f in fields if f != "preferences_link"]

    def get_readonly_fields(self, request, obj=None):
        return [f for f in super().get_readonly_fields(request, obj)
                if f in self.get_fields(request, obj)]

    @admin.display(description=_("preference page"))
    def preferences_link(self, obj: Subscriber) -> str:
        return format_html('<a href="{}">{}</a>', links.preferences_url(obj.id),
                           _("open as the subscriber"))

    @admin.action(description=_("Erase personal data (keeps the address suppressed)"),
                  permissions=["delete"])
    def erase(self, request, queryset):
        count = sum(subscriber_erase(subscriber_id=s.id, client=Client(
            ip=request.META.get("REMOTE_ADDR"), source=ConsentRecord.Source.ADMIN))
            for s in queryset)
        self.message_user(request, _("%(n)d subscribers erased.") % {"n": count})


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("subscriber", "mailing_list", "status", "created_at", "confirmed_at")
    list_filter = ("status", "mailing_list")
    search_fields = ("subscriber__email",)
    list_select_related = ("subscriber", "mailing_list")
    readonly_fields = ("subscriber", "mailing_list", "status", "created_at", "confirmed_at",
                       "unsubscribed_at", "requested_at", "subscriber_import")
    actions = ["unsubscribe"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Unsubscribe (recorded in the consent log)"),
                  permissions=["change"])
    def unsubscribe(self, request, queryset):
        client = Client(ip=request.META.get("REMOTE_ADDR"), source=ConsentRecord.Source.ADMIN)
        count = sum(subscription_unsubscribe(subscription_id=s.id, client=client,
                                             detail=f"by {request.user.get_username()}")
                    for s in queryset)
        self.message_user(request, _("%(n)d unsubscribed.") % {"n": count})


class ReadOnlyAdmin(admin.ModelAdmin):
    """The consent log is evidence: nobody edits or deletes it through the admin."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "source", "list_slug", "address", "ip")
    list_filter = ("event", "source", "list_slug")
    search_fields = ("=address_sha256", "address")


@admin.register(ConsentText)
class ConsentTextAdmin(ReadOnlyAdmin):
    list_display = ("mailing_list", "version", "created_at", "sha256")
    list_filter = ("mailing_list",)


class SubscriberImportForm(forms.ModelForm):
    class Meta:
        model = SubscriberImport
        fields = ("mailing_list", "mode", "consent_statement", "file")

    def clean(self):
        data = super().clean()
        if not data.get("file"):
            self.add_error("file", _("Choose a CSV file."))
        if (data.get("mode") == SubscriberImport.Mode.CONFIRMED
                and not (data.get("consent_statement") or "").strip()):
            self.add_error("consent_statement",
                           _("Say how these people agreed, or choose to request their opt-in."))
        return data


@admin.register(SubscriberImport)
class SubscriberImportAdmin(admin.ModelAdmin):
    form = SubscriberImportForm
    change_form_template = "admin/newsletter/subscriberimport/change_form.html"
    list_display = ("created_at", "source_name", "mailing_list", "mode", "state", "progress",
                    "rows_read", "subscriptions_created", "rows_invalid")
    list_filter = ("state", "mailing_list")
    result_fields = ("state", "progress", "created_by", "created_at", "started_at",
                     "finished_at", "rows_read", "subscribers_created", "subscriptions_created",
                     "subscriptions_existing", "rows_duplicate", "rows_suppressed",
                     "rows_invalid", "report_link", "error")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("mailing_list", "mode", "consent_statement", "file")
        return ("mailing_list", "mode", "consent_statement", "source_name", *self.result_fields)

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or super().has_add_permission(request)

    @admin.display(description=_("progress"))
    def progress(self, obj: SubscriberImport) -> str:
        return format_html('<progress max="100" value="{}" aria-label="{}">{} %</progress> {} %',
                           obj.percent, _("progress"), obj.percent, obj.percent)

    @admin.display(description=_("report of skipped rows"))
    def report_link(self, obj: SubscriberImport) -> str:
        if not obj.report:
            return "-"
        url = reverse("admin:newsletter_subscriberimport_report", args=[obj.id])
        return format_html('<a href="{}">{}</a>', url, _("download CSV"))

    def get_urls(self):
        return [path("<int:import_id>/report/", self.admin_site.admin_view(self.report_view),
                     name="newsletter_subscriberimport_report"), *super().get_urls()]

    def report_view(self, request, import_id: int):
        job = get_object_or_404(SubscriberImport, id=import_id)
        if not self.has_view_permission(request, job) or not job.report:
            raise Http404
        return FileResponse(job.report.open("rb"), as_attachment=True,
                            filename=f"import-{job.id}-report.csv", content_type="text/csv")

    def save_model(self, request, obj: SubscriberImport, form, change):
        from newsletter.tasks import subscriber_import_run

        obj.created_by = request.user.get_username()
        obj.source_name = (form.cleaned_data["file"].name or "")[:255]
        super().save_model(request, obj, form, change)
        subscriber_import_run.delay_on_commit(obj.id)
        self.message_user(request, _("The import runs in the background; this page shows "
                                     "its progress."))


# Campaigns, layouts and their pages (a module of their own).
from newsletter import campaign_admin  # noqa: E402, F401
