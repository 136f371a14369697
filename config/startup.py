"""What a serving process (web, workers, beat, bounce listener) checks before it starts."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from config.env import ConfigError

MISSING_SECRET_KEY = "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off"  # noqa: S105


def secret_key_missing() -> bool:
    try:
        return not settings.SECRET_KEY
    except ConfigError:  # another variable is wrong: that is the line to show
        raise
    except ImproperlyConfigured:  # Django's own refusal of an empty key, on first use
        return True


def require_secret_key() -> None:
    """Refuse to serve without a secret key: nothing it signs could be trusted or read."""
    if secret_key_missing():
        raise ConfigError(MISSING_SECRET_KEY)
