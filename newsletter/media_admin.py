"""Admin of the editor's library: images (with the toolbar's upload endpoint) and blocks.

Two JSON endpoints serve the campaign editor's toolbar:

- ``admin:newsletter_mediaasset_upload``: POST multipart ``file`` (+ optional ``campaign``
  id and ``alt``), CSRF-checked, needs ``newsletter.add_mediaasset``. Answers
  ``{"url", "markdown", "html", "id", "existing"}`` or ``{"error"}`` with 400 (413 when
  too large, 403 without the permission). GET tells the limits the toolbar can check
  before it uploads: ``{"max_bytes", "max_pixels", "types", "field"}``.
- ``admin:newsletter_contentblock_choices``: GET, needs ``newsletter.view_contentblock``:
  ``[{"id", "name", "body", "body_format", "html"}]``.

An upload's size is judged from its Content-Length before the body is read (so a huge
body is never spooled to disk); the CSRF check, which reads the body, runs after that.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_protect

from newsletter import conf
from newsletter.blocks import content_block_choices, content_block_problem, content_block_save
from newsletter.campaign_models import Campaign
from newsletter.exceptions import InvalidInput
from newsletter.media import (
    ACCEPTED,
    MediaError,
    MediaTooLarge,
    alt_clean,
    image_inspect,
    label_clean,
    media_delete,
    media_find,
    media_path,
    media_snippets,
    media_store,
    media_uses_blocking,
    too_large_message,
)
from newsletter.media_models import IMAGE_FORMATS, ContentBlock, MediaAsset

# Room for the multipart framing and the small fields next to the file.
MULTIPART_OVERHEAD = 64 * 1024


def _body_too_long(request) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return length > conf.MEDIA_MAX_BYTES + MULTIPART_OVERHEAD


def _read_upload(upload) -> bytes:
    """The uploaded bytes, read no further than one byte past the limit."""
    data = upload.read(conf.MEDIA_MAX_BYTES + 1)
    if len(data) > conf.MEDIA_MAX_BYTES:
        raise MediaTooLarge(too_large_message(upload.size))
    return data


class MediaAssetAddForm(forms.ModelForm):
    upload = forms.FileField(label=_("image"),
                             help_text=_("%(types)s, checked by content.") % {"types": ACCEPTED})

    class Meta:
        model = MediaAsset
        fields = ["alt", "campaign"]

    def clean_upload(self):
        upload = self.cleaned_data["upload"]
        try:
            self.upload_bytes = _read_upload(upload)
            image_inspect(self.upload_bytes)
        except MediaError as error:
            raise ValidationError(str(error)) from error
        stored = media_find(self.upload_bytes)
        if stored is not None:
            raise ValidationError(
                format_html('This image is in the library already: <a href="{}">{}</a>.',
                            reverse("admin:newsletter_mediaasset_change", args=[stored.pk]),
                            str(stored)))
        return upload


class MediaAssetChangeForm(forms.ModelForm):
    class Meta:
        model = MediaAsset
        fields = ["label", "alt", "campaign"]

    def clean_label(self):
        return label_clean(self.cleaned_data.get("label") or "")

    def clean_alt(self):
        return alt_clean(self.cleaned_data.get("alt") or "")


@admin.register(MediaAsset)
class MediaAssetAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "name", "campaign", "dimensions", "size_label",
                    "uploaded_by", "created_at")
    list_display_links = ("thumbnail", "name")
    list_filter = ("content_type", "campaign")
    search_fields = ("label", "alt", "=key", "=sha256")
    list_select_related = ("campaign", "uploaded_by")
    readonly_fields = ("preview", "snippets", "content_type", "dimensions", "size_label",
                       "sha256", "uploaded_by", "created_at", "kept_for")

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = MediaAssetChangeForm if obj is not None else MediaAssetAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["upload", "alt", "campaign"]
        return ["preview", "label", "alt", "campaign", "snippets", "content_type",
                "dimensions", "size_label", "sha256", "uploaded_by", "created_at", "kept_for"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    # -- columns and read-only fields
    @admin.display(description=_("image"))
    def thumbnail(self, obj: MediaAsset) -> str:
        return format_html('<img src="{}" alt="" loading="lazy" '
                           'style="max-width:96px;max-height:64px">', media_path(obj))

    @admin.display(description=_("name"), ordering="label")
    def name(self, obj: MediaAsset) -> str:
        return str(obj)

    @admin.display(description=_("image"))
    def preview(self, obj: MediaAsset) -> str:
        return format_html('<img src="{}" alt="{}" style="max-width:600px;max-height:400px">',
                           media_path(obj), obj.alt)

    @admin.display(description=_("size"), ordering="size")
    def size_label(self, obj: MediaAsset) -> str:
        return f"{obj.size / 1024:.0f} KiB" if obj.size >= 1024 else f"{obj.size} bytes"

    @admin.display(description=_("pixels"))
    def dimensions(self, obj: MediaAsset) -> str:
        return f"{obj.width} x {obj.height}"

    @admin.display(description=_("to put in a body"))
    def snippets(self, obj: MediaAsset) -> str:
        found = media_snippets(obj)
        return format_html_join(
            "", '<p><b>{}</b><br><input readonly size="100" value="{}"></p>',
            ((_("Address"), found["url"]), (_("Markdown"), found["markdown"]),
             (_("HTML"), found["html"])))

    @admin.display(description=_("kept for"))
    def kept_for(self, obj: MediaAsset) -> str:
        reasons = media_uses_blocking(obj)
        return " ".join(reasons) if reasons else _("No sent or scheduled campaign: it may be "
                                                   "deleted.")

    # -- adding and deleting
    def add_view(self, request, form_url="", extra_context=None):
        # Judged before the CSRF check (which reads, and spools, the whole body); the
        # form view checks CSRF itself (ModelAdmin.changeform_view is csrf_protect'ed).
        if request.method == "POST" and _body_too_long(request):
            messages.error(request, too_large_message())
            return HttpResponseRedirect(request.path)
        return super().add_view(request, form_url, extra_context)

    add_view.csrf_exempt = True  # the CSRF middleware waits for the size check above

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        stored, created = media_store(
            data=form.upload_bytes, filename=form.cleaned_data["upload"].name, alt=obj.alt,
            user=request.user, campaign=obj.campaign, asset=obj)
        if not created:  # the same bytes stored a moment ago (the form checked before)
            obj.__dict__.update({k: v for k, v in stored.__dict__.items()
                                 if not k.startswith("_")})

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        for asset in objs:
            protected.extend(f"{asset}: {reason}" for reason in media_uses_blocking(asset))
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        media_delete(obj)

    def delete_queryset(self, request, queryset):
        for asset in queryset:
            media_delete(asset)

    # -- the toolbar's endpoint
    def get_urls(self):
        return [path("upload/", self.admin_site.admin_view(self.upload_view),
                     name="newsletter_mediaasset_upload"),
                *super().get_urls()]

    def upload_view(self, request):
        if not self.has_add_permission(request):
            return JsonResponse({"error": "You may not upload images."}, status=403)
        if request.method == "GET":
            return JsonResponse({"max_bytes": conf.MEDIA_MAX_BYTES,
                                 "max_pixels": conf.MEDIA_MAX_PIXELS,
                                 "types": [t for t, _ext in IMAGE_FORMATS.values()],
                                 "field": "file"})
        if request.method != "POST":
            return JsonResponse({"error": "Upload with POST."}, status=405,
                                headers={"Allow": "GET, POST"})
        if _body_too_long(request):
            return JsonResponse({"error": too_large_message()}, status=413)
        return _upload_checked(request, self)

    upload_view.csrf_exempt = True  # checked in _upload_checked, after the size check


@csrf_protect
def _upload_checked(request, model_admin: MediaAssetAdmin):
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "No file: send the image as the form field “file”."},
                            status=400)
    campaign = None
    if request.POST.get("campaign"):
        try:
            campaign = Campaign.objects.get(pk=int(request.POST["campaign"]))
        except (ValueError, Campaign.DoesNotExist):
            return JsonResponse({"error": f"No campaign with id {request.POST['campaign']!r}."},
                                status=400)
    try:
        asset, created = media_store(data=_read_upload(upload), filename=upload.name,
                                     alt=request.POST.get("alt", ""), user=request.user,
                                     campaign=campaign)
    except MediaError as error:
        return JsonResponse({"error": str(error)}, status=error.status)
    if created:
        model_admin.log_addition(request, asset, "Uploaded from the campaign editor.")
    return JsonResponse({**media_snippets(asset, request.POST.get("alt") or None),
                         "id": asset.pk, "existing": not created},
                        status=201 if created else 200)


class ContentBlockForm(forms.ModelForm):
    class Meta:
        model = ContentBlock
        fields = ["name", "body_format", "body"]
        widgets = {"body": forms.Textarea(attrs={"rows": 14, "cols": 100,
                                                 "style": "font-family: monospace"})}

    def clean_body(self):
        body = self.cleaned_data.get("body") or ""
        problem = content_block_problem(body)
        if problem:
            raise ValidationError(f"Personalisation: {problem}"
                                  if problem != "The block is empty." else problem)
        return body


@admin.register(ContentBlock)
class ContentBlockAdmin(admin.ModelAdmin):
    form = ContentBlockForm
    list_display = ("name", "body_format", "updated_at", "created_by")
    search_fields = ("name", "body")
    readonly_fields = ("created_by", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        try:
            content_block_save(obj, user=request.user)
        except InvalidInput as error:  # checked in the form already
            raise ValidationError(str(error)) from error

    def get_urls(self):
        return [path("choices/", self.admin_site.admin_view(self.choices_view),
                     name="newsletter_contentblock_choices"),
                *super().get_urls()]

    def choices_view(self, request):
        if not self.has_view_permission(request):
            return JsonResponse({"error": "You may not see content blocks."}, status=403)
        return JsonResponse(content_block_choices(), safe=False)
