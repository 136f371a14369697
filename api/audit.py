"""Every write through the API lands in the admin's log (django.contrib.admin LogEntry)."""

from __future__ import annotations

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType

ADDED, CHANGED, DELETED = ADDITION, CHANGE, DELETION


def log_write(request, obj, flag: int, message: str, *, label: str | None = None) -> None:
    """One log row naming the token; ``label`` replaces ``str(obj)`` (an erased person's
    address must not stay behind in the log)."""
    token = request.auth
    LogEntry.objects.create(
        user_id=request.user.pk, content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk), object_repr=(label if label is not None else str(obj))[:200],
        action_flag=flag, change_message=f"API (token {token.name!r}): {message}"[:2000])
