"""Creating, checking and revoking API tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.utils import timezone

from api.models import ApiToken

KEY_PREFIX = "pw_"
SCOPES = frozenset(ApiToken.Scope.values)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def token_create(*, user, name: str, scopes: list[str], expires_at=None) -> tuple[ApiToken, str]:
    """A new token; returns the row and the key, which is never stored nor shown again."""
    unknown = set(scopes) - SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(sorted(unknown))}")
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken.objects.create(user=user, name=name, prefix=prefix, key_sha256=_digest(key),
                                    scopes=sorted(set(scopes)), expires_at=expires_at)
    return token, key


def token_fill_new(token: ApiToken) -> str:
    """Give an unsaved token (the admin's add form) its prefix and hash; returns the key."""
    token.prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{token.prefix}_{secrets.token_urlsafe(32)}"
    token.key_sha256 = _digest(key)
    return key


def token_for_key(key: str) -> ApiToken | None:
    """The active token this key belongs to, or None (unknown, wrong, revoked, expired)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    prefix, sep, _secret = key[len(KEY_PREFIX):].partition("_")
    if not sep or not prefix:
        return None
    token = ApiToken.objects.select_related("user").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.key_sha256, _digest(key)):
        return None
    if not token.active or not token.user.is_active:
        return None
    return token


def token_touch(token: ApiToken) -> None:
    """Note the use, at most once a minute (no write per request)."""
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def token_revoke(token: ApiToken) -> bool:
    """Revoke at once; False when it already was."""
    return bool(ApiToken.objects.filter(pk=token.pk, revoked_at=None)
                .update(revoked_at=timezone.now()))
