"""Stand-ins for the media library's upload and the content blocks' list (another branch).

They answer exactly as those pages are specified to (issue 21), so the compose
page's image and block buttons are driven end to end before the real pages are
merged: the upload takes the multipart ``file`` (+ ``campaign``) behind the CSRF
check and answers ``{"url", "markdown", "html"}`` or ``{"error"}`` with 400;
the list answers ``[{"id", "name", "body", "body_format"}]``.
"""

from __future__ import annotations

from django.http import JsonResponse
from django.urls import include, path

UPLOADS: list[dict] = []
URL = "https://media.shop.example/m/1/spring.png"


def upload(request):
    if request.method != "POST" or "file" not in request.FILES:
        return JsonResponse({"error": "POST an image as file."}, status=400)
    file = request.FILES["file"]
    UPLOADS.append({"name": file.name, "size": file.size,
                    "campaign": request.POST.get("campaign", "")})
    if not file.name.endswith(".png"):
        return JsonResponse({"error": f"{file.name} is not an image (PNG, JPEG, GIF)."},
                            status=400)
    return JsonResponse({"url": URL, "markdown": f"![spring]({URL})",
                         "html": f'<img src="{URL}" alt="spring">'})


def blocks(request):
    return JsonResponse([
        {"id": 1, "name": "Shop hours", "body_format": "html",
         "body": "<p>Open Monday to Saturday, 9 to 18.</p>"},
        {"id": 2, "name": "Signature", "body_format": "markdown",
         "body": "Yours, **the shop team**"},
    ], safe=False)


urlpatterns = [path("contract/upload/", upload), path("contract/blocks/", blocks),
               path("", include("config.urls"))]
