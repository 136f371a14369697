"""The click redirect and the open pixel: check the signature, record one line, answer.

Kept to the minimum on purpose (``benchmarks/click_redirect.py``): no session,
no database write, no classification in the request (``newsletter.tracking``).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET

from newsletter import conf, tracking
from newsletter.views import client_ip


def _ip(request: HttpRequest) -> str:
    """The client's address as given; the drain parses it (a bad one matches no range)."""
    if conf.SIGNUP_TRUSTED_PROXIES:
        return client_ip(request) or ""
    return request.META.get("REMOTE_ADDR", "")


def _invalid(request: HttpRequest) -> HttpResponse:
    response = render(request, "newsletter/link_problem.html", {"problem": "invalid"},
                      status=404)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def click(request: HttpRequest, token: str) -> HttpResponse:
    """Redirect to the campaign's stored link; anything not signed by us gets an error page
    (never a redirect, so no one can use us to bounce visitors elsewhere)."""
    try:
        campaign_id, index, subscription_id = tracking.click_token_read(token)
    except tracking.TokenInvalid:
        return _invalid(request)
    url = tracking.link_target(campaign_id, index)
    if url is None:
        return _invalid(request)
    tracking.hit_record("click", campaign_id, index, subscription_id, ip=_ip(request),
                        user_agent=request.META.get("HTTP_USER_AGENT", ""))
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def pixel(request: HttpRequest, token: str) -> HttpResponse:
    """A 1x1 transparent GIF; counted only when the token is ours."""
    try:
        campaign_id, subscription_id = tracking.open_token_read(token)
    except tracking.TokenInvalid:
        status = 404
    else:
        status = 200
        tracking.hit_record("open", campaign_id, tracking.OPEN_INDEX, subscription_id,
                            ip=_ip(request),
                            user_agent=request.META.get("HTTP_USER_AGENT", ""))
    response = HttpResponse(tracking.PIXEL_GIF, content_type="image/gif", status=status)
    response["Cache-Control"] = "no-store, private"
    return response
