"""``Authorization: Bearer pw_…`` (RFC 6750), checked against the hashed tokens.

Wrong tokens are limited per client network (an IPv4 address, an IPv6 /64:
``newsletter.ratelimit.client_networks``): past ``API_FAILED_AUTH_PER_MIN``
failures in a minute, a client is answered 429 before any database lookup, so
guessing or replaying keys costs the service a Redis round trip at most. Valid
tokens are counted per token by ``api.throttling``.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from api.tokens import token_for_key, token_touch
from newsletter import ratelimit

FAILED_WINDOW_S = 60


def _failure_key(request) -> str | None:
    from newsletter.views import client_ip  # the trusted-proxy rule of the public pages

    ip = client_ip(request)
    return ratelimit.key_for("api-auth", ratelimit.client_networks(ip)[0]) if ip else None


def _refuse_if_over(key: str | None) -> None:
    if key and ratelimit.full(key, settings.API_FAILED_AUTH_PER_MIN, FAILED_WINDOW_S):
        raise exceptions.Throttled(wait=FAILED_WINDOW_S,
                                   detail="Too many wrong tokens from your network.")


def _failed(key: str | None, message: str) -> exceptions.AuthenticationFailed:
    if key:
        ratelimit.hit([(key, settings.API_FAILED_AUTH_PER_MIN, FAILED_WINDOW_S)])
    return exceptions.AuthenticationFailed(message)


class ApiTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        failures = _failure_key(request)
        _refuse_if_over(failures)
        if len(header) != 2:
            raise _failed(failures, "Authorization: Bearer <token>, one token.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise _failed(failures, "The token is not ASCII.") from exc
        token = token_for_key(key)
        if token is None:
            raise _failed(failures, "Unknown, revoked or expired token.")
        token_touch(token)
        return token.user, token

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema names this authentication (HTTP bearer)."""

    target_class = "api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "pw_<prefix>_<secret>"}
