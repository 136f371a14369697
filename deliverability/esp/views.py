"""The hooks: one URL per provider, POST only, verified before anything is stored.

200 once recorded (or nothing to record); 403 when the post is not verifiably the
provider's (nothing stored); 400 when verified but malformed. Providers retry on
5xx, so an intake failure answers 500 and the event comes again.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from deliverability.esp import mailgun, postmark, sendgrid, ses
from deliverability.esp.base import Malformed, Refused

logger = logging.getLogger(__name__)


def _answer(provider: str, call) -> HttpResponse:
    try:
        done = call()
    except Refused as exc:
        logger.warning("esp webhook %s refused: %s", provider, exc)
        return JsonResponse({"error": "refused", "detail": str(exc)}, status=403)
    except Malformed as exc:
        logger.warning("esp webhook %s malformed: %s", provider, exc)
        return JsonResponse({"error": "malformed", "detail": str(exc)}, status=400)
    return JsonResponse({"ok": True, **done})


@csrf_exempt
@require_POST
def ses_hook(request):
    return _answer("ses", lambda: ses.handle(request.body))


@csrf_exempt
@require_POST
def sendgrid_hook(request):
    return _answer("sendgrid", lambda: sendgrid.handle(request.body, request.headers))


@csrf_exempt
@require_POST
def mailgun_hook(request):
    return _answer("mailgun", lambda: mailgun.handle(request.body))


@csrf_exempt
@require_POST
def postmark_hook(request):
    return _answer("postmark", lambda: postmark.handle(
        request.body, request.headers.get("Authorization")))
