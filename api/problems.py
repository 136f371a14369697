"""Errors as RFC 9457 problem details (``application/problem+json``).

``type`` is a stable URI per kind of problem (under /api/v1/problems/, which
the README lists), ``title`` its short text, ``detail`` this occurrence, and
field errors of a request body go in ``errors`` (an extension member, §3.2).
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "/api/v1/problems/"

_TITLES = {
    400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict",
    413: "Content too large", 415: "Unsupported media type", 422: "Unprocessable content",
    429: "Too many requests",
    500: "Server error",
}


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with an earlier one."
    default_code = "conflict"


class TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than this server takes."
    default_code = "too_large"


class Unprocessable(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "The request is well formed but cannot be done."
    default_code = "unprocessable"


def problem(status_code: int, detail: str, *, code: str = "", instance: str = "",
            **extra) -> dict:
    body = {"type": TYPE_BASE + (code or str(status_code)),
            "title": _TITLES.get(status_code, "Error"), "status": status_code,
            "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra)
    return body


def _text(detail) -> str:
    if isinstance(detail, list):
        return " ".join(_text(d) for d in detail)
    if isinstance(detail, dict):
        return " ".join(f"{k}: {_text(v)}" for k, v in detail.items())
    return str(detail)


def problem_exception_handler(exc, context):
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):  # Django's DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = TooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE}"
                       " bytes.")
    response = exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django's 500 (logged), never a stack trace to the caller
    request = context.get("request")
    code = getattr(exc, "default_code", "") if isinstance(exc, exceptions.APIException) else ""
    extra = {}
    if isinstance(exc, exceptions.ValidationError):
        code, detail = "validation", "The request has invalid fields; see errors."
        extra["errors"] = exc.detail if isinstance(exc.detail, dict) else {
            "non_field_errors": exc.detail}
    else:
        detail = _text(getattr(exc, "detail", response.data))
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        extra["retry_after"] = int(exc.wait)
    body = problem(response.status_code, detail, code=code,
                   instance=request.path if request is not None else "", **extra)
    headers = {name: response[name] for name in ("WWW-Authenticate", "Retry-After")
               if response.has_header(name)}
    return Response(body, status=response.status_code, headers=headers,
                    content_type=CONTENT_TYPE)


@csrf_exempt  # a refusal, never a form: no CSRF page for a PATCH to a wrong path
def not_found_view(request, exception=None):
    """404 below /api/ as a problem too (unknown paths never reach DRF)."""
    return JsonResponse(problem(404, "No such API endpoint.", instance=request.path),
                        status=404, content_type=CONTENT_TYPE)
