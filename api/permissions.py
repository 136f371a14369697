"""A token may do what its scopes allow AND what its user's model permissions allow.

The model permissions are the admin's (``view_``/``add_``/``change_``/``delete_``),
so an editor's token can never do more through the API than the editor can
do in the admin. Views name the scope a write needs (``write_scope``) and the
model whose permissions apply (``permission_model``).
"""

from __future__ import annotations

from rest_framework import permissions

from api.models import ApiToken

SAFE = permissions.SAFE_METHODS
_ACTION_FOR_METHOD = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add",
                      "PUT": "change", "PATCH": "change", "DELETE": "delete"}


def _handles(view, request) -> bool:
    return hasattr(view, request.method.lower())


class TokenScope(permissions.BasePermission):
    message = "This token's scopes do not allow this."

    def has_permission(self, request, view) -> bool:
        token = request.auth
        if not isinstance(token, ApiToken):
            return False
        if not _handles(view, request):
            return True  # dispatch answers 405
        scopes = set(token.scopes)
        if request.method in SAFE:
            read = getattr(view, "read_scopes", (ApiToken.Scope.READ,))
            return bool(scopes & set(read))
        return getattr(view, "write_scope", None) in scopes


class ModelPermissions(permissions.BasePermission):
    """``app.<action>_<model>`` for the view's model; reads need ``view_`` (unlike DRF's)."""

    message = "Your user lacks the permission for this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        model = getattr(view, "permission_model", None)
        if not _handles(view, request):
            return True
        if model is None:
            return False  # a view that names no model is refused, never open
        actions = getattr(view, "permission_actions", {}).get(request.method) or [
            _ACTION_FOR_METHOD.get(request.method, "change")]
        meta = model._meta
        return all(user.has_perm(f"{meta.app_label}.{action}_{meta.model_name}")
                   for action in actions)
