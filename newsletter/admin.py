"""Admin: lists (with the embeddable form), subscribers, the consent log, imports."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import StreamingHttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
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


# Imports (upload, preview and mapping, the live detail page), campaigns and layouts, the
# editor's library (images, the toolbar's upload endpoint, content blocks): modules of
# their own.
from newsletter import campaign_admin, import_admin, media_admin  # noqa: E402, F401
