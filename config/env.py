"""The one reader of environment variables.

Every setting the service reads from the environment goes through these
functions, so a bad value stops start-up with one line that names the
variable (``ConfigError``) instead of a traceback from deep inside Django.
Every variable read here is listed in ``.env.example``.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ImproperlyConfigured):
    """A configuration variable is missing or malformed."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value is not None else None


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_required(name: str, why: str) -> str:
    value = _raw(name)
    if not value:
        raise ConfigError(f"{name} must be set ({why})")
    return value


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None or value == "":  # "FLAG=" (as .env.example lists it) keeps the default
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")


def env_int(name: str, default: int, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name}={number} is above the maximum {maximum}")
    return number


def env_port(name: str, default: int) -> int:
    return env_int(name, default, minimum=1, maximum=65535)


def env_float(name: str, default: float) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None or value == "":
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    value = _raw(name)
    return Path(value).expanduser().resolve() if value else default


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    """A URL whose scheme is one of ``schemes``; the host is required unless file-like."""
    value = _raw(name) or default
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{name} is malformed: {exc}") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            f"{name} must start with one of {', '.join(s + '://' for s in schemes)}"
        )
    return value


def database_config(name: str, default_sqlite: Path) -> dict:
    """Django DATABASES['default'] from a URL, or SQLite in the data folder."""
    import dj_database_url

    value = _raw(name)
    if not value:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(default_sqlite),
                **SQLITE_TUNING}
    env_url(name, value, schemes=("postgres", "postgresql", "pgsql", "sqlite"))
    try:
        config = dj_database_url.parse(value, conn_max_age=60)
    except Exception as exc:  # dj_database_url raises several types
        raise ConfigError(f"{name} is malformed: {exc}") from None
    if config.get("ENGINE", "").endswith("postgresql") and not config.get("NAME"):
        raise ConfigError(f"{name} names no database (postgresql://user@host:port/NAME)")
    if config.get("ENGINE", "").endswith("sqlite3"):
        config.update(SQLITE_TUNING)
        config["CONN_MAX_AGE"] = 0
    return config


SQLITE_TUNING = {
    # WAL lets the web process read while workers write; IMMEDIATE takes the
    # write lock up front, so concurrent writers wait instead of failing.
    "OPTIONS": {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    },
}
