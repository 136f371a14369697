"""What every API view shares: newsletter errors as problems, the caller as a consent client."""

from __future__ import annotations

from rest_framework import exceptions, status
from rest_framework.exceptions import APIException

from newsletter.exceptions import InvalidAddress, InvalidInput, SignupRateLimited
from newsletter.models import ConsentRecord
from newsletter.services.consent import Client

# Primary keys in paths: digits only, never more than a 64-bit integer holds.
ID_PATTERN = r"[0-9]{1,18}"


class RateLimited(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many signups for this client or list; try again later."
    default_code = "signup_rate_limited"


def service_errors(func):
    """Run a service call; its refusals become 400/429 problems with its message."""
    try:
        return func()
    except InvalidAddress as exc:
        raise exceptions.ValidationError({"email": [str(exc)]}) from exc
    except InvalidInput as exc:
        raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
    except SignupRateLimited as exc:
        raise RateLimited(f"Signup rate limit reached ({exc.scope}).") from exc


def api_client(data: dict) -> Client:
    """The person's IP and user agent as the caller states them, recorded with source api."""
    return Client(ip=data.get("ip") or None, user_agent=data.get("user_agent") or "",
                  source=ConsentRecord.Source.API)
