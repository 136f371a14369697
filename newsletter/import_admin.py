"""Admin of subscriber imports: upload, preview with column mapping, then the live detail page.

Upload stores the file and waits (state ``preview``); the mapping page shows
the first rows decoded with the detected (or chosen) encoding, with a choice
per column (e-mail, name, attribute, ignore). Confirming queues the import and
opens its detail page, which refreshes itself while the worker runs and says
why when nothing was created. Adding and mapping need ``add_subscriberimport``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from newsletter.exceptions import ImportFileError
from newsletter.import_preview import ENCODINGS, ROLES, column_map_clean, preview_read
from newsletter.models import SubscriberImport

PREVIEW_READ_BYTES = 64 * 1024


class SubscriberImportForm(forms.ModelForm):
    encoding = forms.ChoiceField(label=_("encoding"), choices=list(ENCODINGS.items()),
                                 required=False,
                                 help_text=_("Usually detected; you can change it on the "
                                             "next page, where the first rows are shown."))

    class Meta:
        model = SubscriberImport
        fields = ("mailing_list", "mode", "consent_statement", "file", "encoding")

    def clean(self):
        data = super().clean()
        if not data.get("file"):
            self.add_error("file", _("Choose a CSV file."))
        if (data.get("mode") == SubscriberImport.Mode.CONFIRMED
                and not (data.get("consent_statement") or "").strip()):
            self.add_error("consent_statement",
                           _("Say how these people agreed, or choose to request their opt-in."))
        return data


def _head(job: SubscriberImport) -> bytes:
    with job.file.open("rb") as source:
        return source.read(PREVIEW_READ_BYTES)


@admin.register(SubscriberImport)
class SubscriberImportAdmin(admin.ModelAdmin):
    form = SubscriberImportForm
    change_form_template = "admin/newsletter/subscriberimport/change_form.html"
    list_display = ("created_at", "source_name", "mailing_list", "mode", "state", "progress",
                    "rows_read", "subscriptions_created", "rows_invalid")
    list_filter = ("state", "mailing_list")
    result_fields = ("state", "outcome", "progress", "created_by", "created_at", "started_at",
                     "finished_at", "encoding", "rows_read", "subscribers_created",
                     "subscriptions_created", "subscriptions_existing", "rows_duplicate",
                     "rows_suppressed", "rows_invalid", "report_link", "error")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("mailing_list", "mode", "consent_statement", "file", "encoding")
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

    @admin.display(description=_("outcome"))
    def outcome(self, obj: SubscriberImport) -> str:
        if obj.state == SubscriberImport.State.PREVIEW:
            return format_html('<a id="import-mapping-link" href="{}">{}</a>',
                               reverse("admin:newsletter_subscriberimport_mapping",
                                       args=[obj.id]),
                               _("Check the columns and start the import"))
        if obj.state == SubscriberImport.State.FAILED:
            return format_html('<strong id="import-outcome">{}</strong> {}',
                               _("Nothing was imported:"), obj.error)
        if obj.state != SubscriberImport.State.DONE:
            return _("Running: this page refreshes itself.")
        reasons = format_html_join(
            "", "<li>{} — {} {} ({} {})</li>",
            ((reason, count, _("rows"), _("first on line"), line)
             for reason, count, line in obj.skip_reasons or []))
        if not obj.subscriptions_created:
            head = _("Nothing was created.")
            if not obj.rows_read:
                head = _("Nothing was created: the file has no rows after its header.")
            elif obj.subscriptions_existing:
                head = _("Nothing was created: %(n)d addresses were on the list already.") % {
                    "n": obj.subscriptions_existing}
            return format_html('<strong id="import-outcome" class="pw-warning">{}</strong>'
                               '<ul id="import-reasons">{}</ul>', head, reasons)
        return format_html('<span id="import-outcome">{}</span><ul id="import-reasons">{}</ul>',
                           ngettext("%(n)d subscription created.", "%(n)d subscriptions created.",
                                    obj.subscriptions_created) % {"n": obj.subscriptions_created},
                           reasons)

    @admin.display(description=_("report of skipped rows"))
    def report_link(self, obj: SubscriberImport) -> str:
        if not obj.report:
            return "-"
        url = reverse("admin:newsletter_subscriberimport_report", args=[obj.id])
        return format_html('<a href="{}">{}</a>', url, _("download CSV"))

    def get_urls(self):
        view = self.admin_site.admin_view
        return [path("<int:import_id>/report/", view(self.report_view),
                     name="newsletter_subscriberimport_report"),
                path("<int:import_id>/mapping/", view(self.mapping_view),
                     name="newsletter_subscriberimport_mapping"),
                *super().get_urls()]

    def report_view(self, request, import_id: int):
        job = get_object_or_404(SubscriberImport, id=import_id)
        if not self.has_view_permission(request, job) or not job.report:
            raise Http404
        return FileResponse(job.report.open("rb"), as_attachment=True,
                            filename=f"import-{job.id}-report.csv", content_type="text/csv")

    def save_model(self, request, obj: SubscriberImport, form, change):
        obj.created_by = request.user.get_username()
        obj.source_name = (form.cleaned_data["file"].name or "")[:255]
        obj.encoding = form.cleaned_data.get("encoding") or ""
        obj.state = SubscriberImport.State.PREVIEW
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        return HttpResponseRedirect(reverse("admin:newsletter_subscriberimport_mapping",
                                            args=[obj.id]))

    def mapping_view(self, request, import_id: int):
        """The first rows and a choice per column; POST queues the import."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        job = get_object_or_404(SubscriberImport.objects.select_related("mailing_list"),
                                id=import_id)
        detail = reverse("admin:newsletter_subscriberimport_change", args=[job.id])
        if job.state != SubscriberImport.State.PREVIEW:
            return HttpResponseRedirect(detail)
        source = request.POST if request.method == "POST" else request.GET
        encoding = source.get("encoding", job.encoding)
        if encoding not in ENCODINGS:
            encoding = ""
        error = ""
        try:
            preview = preview_read(_head(job), encoding)
        except ImportFileError as problem:
            preview, error = None, str(problem)
        if request.method == "POST" and preview is not None and "start" in request.POST:
            try:
                column_map = column_map_clean(request.POST.getlist("role"),
                                              request.POST.getlist("key"),
                                              [c.header for c in preview.columns])
            except ImportFileError as problem:
                error = str(problem)
            else:
                return self._start(request, job, column_map, preview.encoding, detail)
        if preview is not None and request.method == "POST":
            for column, role, key in zip(preview.columns, request.POST.getlist("role"),
                                         request.POST.getlist("key"), strict=False):
                column.role, column.key = (role if role in ROLES else column.role), key
        context = {
            **self.admin_site.each_context(request),
            "title": _("Check the columns of %(file)s") % {"file": job.source_name},
            "opts": self.model._meta,
            "job": job,
            "preview": preview,
            "error": error,
            "encodings": ENCODINGS,
            "chosen": encoding,
            "roles": {"email": _("E-mail address"), "name": _("Name"),
                      "attribute": _("Attribute"), "ignore": _("Ignore")},
            "detail_url": detail,
        }
        return render(request, "newsletter/admin/import_mapping.html", context)

    def _start(self, request, job, column_map, encoding, detail):
        from newsletter.tasks import subscriber_import_run

        with transaction.atomic():
            queued = SubscriberImport.objects.filter(
                id=job.id, state=SubscriberImport.State.PREVIEW).update(
                state=SubscriberImport.State.QUEUED, column_map=column_map, encoding=encoding)
            if queued:
                transaction.on_commit(lambda: subscriber_import_run.delay(job.id))
        if queued:
            self.log_change(request, job, f"Columns mapped: {', '.join(column_map)}; "
                                          f"encoding {encoding}.")
            messages.success(request, _("The import runs in the background; this page shows "
                                        "its progress."))
        return HttpResponseRedirect(detail)
