"""The editor's library: uploaded images and reusable content blocks (imported by models).

Writes go through ``newsletter.media`` and ``newsletter.blocks``. Neither model holds
subscriber data: an image is the editor's upload, a block is the editor's text, so
erasing a subscriber never has to reach them (README "Privacy").
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# Format (as Pillow names it) -> (content type, file extension). One table: the upload
# check, the stored name and the served Content-Type all read it. SVG is not here: an
# SVG is a document that can carry scripts.
IMAGE_FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}
CONTENT_TYPES_BY_EXTENSION = {ext: ctype for ctype, ext in IMAGE_FORMATS.values()}
# Stored files live here (under MEDIA_ROOT), named by their random key only.
LIBRARY_DIR = "library"


class MediaAsset(models.Model):
    """One uploaded image, stored under a random name and served at /media/<key>.<ext>."""

    key = models.CharField(max_length=32, unique=True, editable=False,
                           help_text=_("Random; the public file name."))
    file = models.FileField(upload_to=LIBRARY_DIR, max_length=200, editable=False)
    label = models.CharField(
        _("label"), max_length=255, blank=True,
        help_text=_("The uploaded file's name, as a label only (never used as a path)."))
    alt = models.CharField(_("alternative text"), max_length=255, blank=True,
                           help_text=_("What a reader without images is told."))
    campaign = models.ForeignKey("newsletter.Campaign", null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="media_assets",
                                 verbose_name=_("uploaded for campaign"))
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+",
                                    editable=False)
    content_type = models.CharField(max_length=32, editable=False)
    size = models.PositiveIntegerField(_("bytes"), editable=False)
    width = models.PositiveIntegerField(editable=False)
    height = models.PositiveIntegerField(editable=False)
    sha256 = models.CharField(max_length=64, unique=True, editable=False,
                              help_text=_("The same bytes are stored once."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("image")
        verbose_name_plural = _("media library")

    def __str__(self) -> str:
        return self.label or self.filename

    @property
    def extension(self) -> str:
        return self.filename.rpartition(".")[2]

    @property
    def filename(self) -> str:
        """The public name, ``<key>.<ext>``."""
        return self.file.name.rpartition("/")[2]


class ContentBlock(models.Model):
    """A reusable piece of a campaign body (a signature, a footer note, an offer box)."""

    class BodyFormat(models.TextChoices):
        MARKDOWN = "markdown", _("Markdown")
        HTML = "html", _("HTML")

    name = models.CharField(_("name"), max_length=200, unique=True)
    body = models.TextField(
        _("body"), help_text=_("Inserted as a copy into a campaign body; personalisation "
                               "tags such as {{ subscriber.name }} work as in the body."))
    body_format = models.CharField(_("body format"), max_length=16,
                                   choices=BodyFormat.choices, default=BodyFormat.MARKDOWN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+",
                                   editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("content block")
        verbose_name_plural = _("content blocks")

    def __str__(self) -> str:
        return self.name
