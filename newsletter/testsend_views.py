"""The pages a test mail's links lead to (``newsletter.testsend``): nothing here acts.

No subscription is read or written and no hit is recorded; a forged, altered or
expired token gets the usual error page and never a redirect.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from newsletter import tokens, tracking
from newsletter.testsend import LINK_KINDS


def _invalid(request: HttpRequest, problem: str = "invalid") -> HttpResponse:
    response = render(request, "newsletter/link_problem.html", {"problem": problem},
                      status=404)
    response["Cache-Control"] = "no-store"
    return response


def _payload(token: str) -> tuple[dict | None, str]:
    try:
        return tokens.test_link_token_read(token), ""
    except tokens.TokenExpired:
        return None, "expired"
    except tokens.TokenInvalid:
        return None, "invalid"


@csrf_exempt  # a one-click POST (RFC 8058) from a mail client carries no CSRF token
@never_cache
@require_http_methods(["GET", "POST"])
def test_link(request: HttpRequest, token: str) -> HttpResponse:
    """Unsubscribe, one-click or preferences in a test mail: says so, changes nothing."""
    payload, problem = _payload(token)
    if problem or payload.get("k") not in LINK_KINDS:
        return _invalid(request, problem or "invalid")
    if request.method == "POST" and payload["k"] == "one-click":
        return HttpResponse("This was a test mail: nothing changed.\n",
                            content_type="text/plain; charset=utf-8")
    return render(request, "newsletter/test_link.html", {"kind": payload["k"]})


@require_GET
def test_click(request: HttpRequest, token: str) -> HttpResponse:
    """A tracked link of a test mail: to its target, without counting a click."""
    payload, problem = _payload(token)
    url = payload.get("u") if payload and payload.get("k") == "click" else None
    if problem or not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        return _invalid(request, problem or "invalid")
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def test_open(request: HttpRequest, token: str) -> HttpResponse:
    """The open pixel of a test mail: the same GIF, nothing counted."""
    payload, problem = _payload(token)
    ok = not problem and payload.get("k") == "open"
    response = HttpResponse(tracking.PIXEL_GIF, content_type="image/gif",
                            status=200 if ok else 404)
    response["Cache-Control"] = "no-store, private"
    return response
