"""The public address of library images, ``/media/<key>.<ext>``, as mail clients load them.

Served by the application itself (with DEBUG on or off, under ``make run`` and
gunicorn alike), never ``django.views.static``. The name is checked against
the one shape stored names have (32 hex digits and one of our extensions), so
the view reads only the library folder: nothing else under MEDIA_ROOT (import
files and their reports hold subscribers' data) can be reached, and no
database query is made per image fetch. The file never changes under its name
(a new upload gets a new random key), so it may be cached for a year.
"""

from __future__ import annotations

import re

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotAllowed

from newsletter.media_models import CONTENT_TYPES_BY_EXTENSION, LIBRARY_DIR

NAME = re.compile(r"([0-9a-f]{32})\.(" + "|".join(CONTENT_TYPES_BY_EXTENSION) + r")")
CACHE_CONTROL = "public, max-age=31536000, immutable"


def media_file(request, name: str):
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    match = NAME.fullmatch(name)
    if match is None:
        raise Http404("No such image.")
    key, extension = match.groups()
    etag = f'"{key}"'
    if etag in request.headers.get("If-None-Match", ""):
        response = HttpResponse(status=304)
    else:
        try:
            handle = default_storage.open(f"{LIBRARY_DIR}/{name}", "rb")
        except (FileNotFoundError, IsADirectoryError) as error:
            raise Http404("No such image.") from error
        response = FileResponse(handle, content_type=CONTENT_TYPES_BY_EXTENSION[extension])
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    # Opened as a page, the image runs nothing and loads nothing.
    response["Content-Security-Policy"] = "default-src 'none'"
    # Mail clients and webmail of other origins load it.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    return response
