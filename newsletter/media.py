"""The media library: check an uploaded image by its content, store it once, link it in mail.

Uploads are hostile input. An image is accepted only if Pillow, trying only the PNG,
JPEG, GIF and WebP readers, recognises it, its pixel count stays under
``MEDIA_MAX_PIXELS`` (read from the header, before anything is decoded: a
decompression bomb is a small file that decodes to a huge bitmap) and it then
decodes completely. The name it is stored and served under is random; the
uploaded name is kept as a label. The same bytes (SHA-256) are stored once.

Sources: Pillow "Image file formats" and ``Image.open(formats=...)``; Pillow's
decompression-bomb protection (``Image.MAX_IMAGE_PIXELS``); OWASP File Upload
Cheat Sheet (validate by content, random names, size limits, serve with
``X-Content-Type-Options: nosniff``); W3C SVG 1.1 section 18 (scripts in SVG).
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import secrets
import unicodedata
import warnings
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html

from newsletter import conf, links
from newsletter.exceptions import NewsletterError
from newsletter.media_models import IMAGE_FORMATS, LIBRARY_DIR, MediaAsset

logger = logging.getLogger(__name__)

# Widest an image is shown in a mail: the default layout's container (campaign_render).
# Outlook on Windows ignores max-width and uses the width attribute.
DISPLAY_MAX_WIDTH = 600
ACCEPTED = "PNG, JPEG, GIF and WebP"


class MediaError(NewsletterError, ValueError):
    """The upload is refused; the message says why, for the editor."""

    status = 400


class MediaTooLarge(MediaError):
    status = 413


def too_large_message(size: int | None = None) -> str:
    limit = _megabytes(conf.MEDIA_MAX_BYTES)
    if size is None:
        return f"The file is larger than {limit}, the most an image may have."
    return f"The file has {_megabytes(size)}; an image may have at most {limit}."


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size:,} bytes"


@dataclass(frozen=True)
class ImageInfo:
    format: str
    content_type: str
    extension: str
    width: int
    height: int


def image_inspect(data: bytes) -> ImageInfo:
    """What the bytes are, if they are an image we accept; ``MediaError`` otherwise."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > conf.MEDIA_MAX_BYTES:
        raise MediaTooLarge(too_large_message(len(data)))
    if not data:
        raise MediaError("The file is empty.")
    start = data[:2048].lstrip().lower()
    if b"<svg" in start or (start.startswith(b"<?xml") and b"svg" in start):
        raise MediaError("SVG images are not accepted: an SVG is a document that can carry "
                         f"scripts. Export it as PNG instead ({ACCEPTED} are accepted).")
    if start.startswith((b"<!doctype", b"<html", b"<script", b"<head", b"<body")):
        raise MediaError(f"This file is HTML, not an image, whatever its name says. "
                         f"Only {ACCEPTED} images are accepted.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only our four readers are tried: no other parser sees hostile bytes.
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as image:
                width, height = image.size  # from the header; nothing decoded yet
                _check_pixels(width, height)
                found = image.format
                image.verify()
            with Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS)) as image:
                image.load()  # verify() skips the pixel data; decoding it proves it whole
    except MediaError:
        raise
    except UnidentifiedImageError as error:
        if _looks_like_ours(data):
            raise MediaError("The image is damaged: it starts like an accepted image but "
                             "cannot be read. Save it again from your image program and "
                             "upload that.") from error
        raise MediaError(f"This file is not an image of an accepted kind: only {ACCEPTED} "
                         "images are accepted (checked by their content, not their "
                         "name).") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise MediaError(f"The image has too many pixels to be decoded safely (at most "
                         f"{conf.MEDIA_MAX_PIXELS:,} are accepted): scale it down.") from error
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as error:
        raise MediaError(f"The image is damaged: it does not decode ({error}). Save it "
                         "again from your image program and upload that.") from error
    content_type, extension = IMAGE_FORMATS[found]
    return ImageInfo(format=found, content_type=content_type, extension=extension,
                     width=width, height=height)


def _looks_like_ours(data: bytes) -> bool:
    """The signatures of PNG (RFC 2083), JPEG (SOI marker), GIF 87a/89a and WebP (RIFF)."""
    return data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")) or (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise MediaError("The image has no pixels.")
    if width * height > conf.MEDIA_MAX_PIXELS:
        raise MediaError(
            f"The image is {width:,} x {height:,} pixels ({width * height:,}); at most "
            f"{conf.MEDIA_MAX_PIXELS:,} pixels are accepted. A mail shows images at most "
            f"{DISPLAY_MAX_WIDTH} pixels wide (twice that for sharp screens): scale it down.")


_UNSAFE = re.compile(r"[\x00-\x1f\x7f{}%|*\[\]<>\\`]")


def label_clean(filename: str) -> str:
    """The uploaded name as a label: last path part only, no control or markup characters."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rpartition("/")[2]
    return _UNSAFE.sub("", name).strip()[:255]


def alt_clean(text: str) -> str:
    """Alternative text safe in Markdown, HTML and personalisation source alike."""
    return re.sub(r"\s+", " ", _UNSAFE.sub("", unicodedata.normalize("NFC", text or ""))
                  ).strip()[:255]


def alt_from_label(label: str) -> str:
    stem = label.rpartition(".")[0] or label
    return alt_clean(re.sub(r"[_\-.]+", " ", stem))


def media_find(data: bytes) -> MediaAsset | None:
    """The stored image with exactly these bytes, if any."""
    return MediaAsset.objects.filter(sha256=hashlib.sha256(data).hexdigest()).first()


def media_store(*, data: bytes, filename: str = "", alt: str = "", user=None,
                campaign=None, asset: MediaAsset | None = None) -> tuple[MediaAsset, bool]:
    """Store an uploaded image; (asset, created). The same bytes give the stored asset.

    ``asset``: an unsaved instance to fill (the admin's add form has one)."""
    info = image_inspect(data)
    digest = hashlib.sha256(data).hexdigest()
    existing = MediaAsset.objects.filter(sha256=digest).first()
    if existing is not None:
        return existing, False
    label = label_clean(filename)
    key = secrets.token_hex(16)
    asset = asset if asset is not None else MediaAsset()
    asset.key, asset.label, asset.sha256 = key, label, digest
    asset.alt = alt_clean(alt) or alt_from_label(label)
    asset.campaign = campaign
    asset.uploaded_by = user if user is not None and user.is_authenticated else None
    asset.content_type, asset.size = info.content_type, len(data)
    asset.width, asset.height = info.width, info.height
    asset.file.save(f"{key}.{info.extension}", ContentFile(data), save=False)
    if asset.file.name != f"{LIBRARY_DIR}/{key}.{info.extension}":  # storage renamed it
        asset.file.delete(save=False)
        raise MediaError("The image could not be stored under its name; try again.")
    try:
        with transaction.atomic():
            asset.save()
    except IntegrityError:  # the same bytes, uploaded at the same moment by someone else
        asset.file.delete(save=False)
        return MediaAsset.objects.get(sha256=digest), False
    logger.info("media.stored", extra={"media_id": asset.id, "bytes": asset.size,
                                       "content_type": asset.content_type})
    return asset, True


def media_url(asset: MediaAsset) -> str:
    """The absolute address mail clients load the image from (SITE_URL, as every link)."""
    return links.absolute(media_path(asset))


def media_path(asset: MediaAsset) -> str:
    return reverse("newsletter:media", args=[asset.filename])


def media_snippets(asset: MediaAsset, alt: str | None = None) -> dict[str, str]:
    """The image's URL and how to write it into a Markdown or an HTML body."""
    url = media_url(asset)
    text = alt_clean(asset.alt if alt is None else alt)
    return {
        "url": url,
        "markdown": f"![{text}]({url})",
        "html": str(format_html('<img src="{}" alt="{}" width="{}">', url, text,
                                min(asset.width, DISPLAY_MAX_WIDTH))),
    }


def media_uses_blocking(asset: MediaAsset) -> list[str]:
    """Why the image must stay: each started mailing or scheduled campaign that shows it."""
    from newsletter.campaign_models import Campaign
    from sending.models import Mailing

    reasons = []
    mailings = Mailing.objects.filter(Q(html_template__contains=asset.key)
                                      | Q(text_template__contains=asset.key))
    names = dict(Campaign.objects.filter(mailing__in=mailings).values_list("mailing_id", "name"))
    for mailing_id, reference in mailings.values_list("id", "reference")[:20]:
        name = names.get(mailing_id)
        reasons.append(f"Campaign “{name}” was sent with this image; its recipients and the "
                       "archive still load it." if name else
                       f"Mailing {mailing_id} ({reference or 'no reference'}) was sent with "
                       "this image.")
    scheduled = Campaign.objects.filter(state=Campaign.State.SCHEDULED).filter(
        Q(body__contains=asset.key) | Q(text_body__contains=asset.key))
    for name in scheduled.values_list("name", flat=True)[:20]:
        reasons.append(f"Campaign “{name}” is scheduled with this image: unschedule it or "
                       "remove the image from it first.")
    return reasons


def media_delete(asset: MediaAsset) -> None:
    """Delete an image no sent or scheduled campaign shows (``MediaError`` otherwise)."""
    reasons = media_uses_blocking(asset)
    if reasons:
        raise MediaError(" ".join(reasons))
    asset_id, name = asset.pk, asset.file.name
    storage = asset.file.storage
    asset.delete()
    transaction.on_commit(lambda: storage.delete(name))  # the row first: never a dangling row
    logger.info("media.deleted", extra={"media_id": asset_id})
