"""Settings: every value comes from the environment through ``config.env``.

Embedded defaults make ``make run`` work on a fresh machine (SQLite in the
data folder, a Redis that the run command starts, the local SMTP sink).
Debug mode is off unless ``DJANGO_DEBUG=true`` (``make run`` sets it for
itself); off, ``DJANGO_SECRET_KEY`` is required. ``.env.example`` lists every
variable with its default.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

from config.env import (
    database_config,
    env_bool,
    env_int,
    env_list,
    env_path,
    env_port,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = env_path("DATA_DIR", BASE_DIR / "data")

# --- Debug mode: off unless asked for (make run asks, for itself) ---
DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key() -> str:
    key = env_str("DJANGO_SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        # Left empty: Django refuses to sign anything with it, the system check
        # (config.checks) stops every command that runs checks, and the web and worker
        # entry points refuse to start (config.startup). Commands that need no key
        # (classify_bounce, explain_headers) still work on a fresh machine.
        return ""
    # Development only: a random key kept in the data folder, so signed links
    # and sessions survive a restart. Never used in production.
    key_file = DATA_DIR / "dev-secret-key"
    if key_file.exists():
        return key_file.read_text().strip()
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
# Key rotation (README "Key rotation"): old secret keys, still accepted for links,
# VERP return paths and sessions signed with them; new signatures use SECRET_KEY.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])

PORT = env_port("PORT", 8000)
SITE_URL = env_str("SITE_URL", f"http://127.0.0.1:{PORT}").rstrip("/")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "config.apps.AdminConfig",  # django.contrib.admin with the two-factor login (below)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "config.apps.ConfigAppConfig",
    "newsletter.apps.NewsletterConfig",
    "sending.apps.SendingConfig",
    "deliverability.apps.DeliverabilityConfig",
]

# --- HTTP API (issue 17): Django REST framework, OpenAPI schema by drf-spectacular.
INSTALLED_APPS += ["rest_framework", "drf_spectacular", "drf_spectacular_sidecar",
                   "api.apps.ApiConfig"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

if not DEBUG:  # in debug mode runserver serves static files itself
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": database_config("DATABASE_URL", DATA_DIR / "db.sqlite3")}
# Tests run real worker processes against the test database, so SQLite's test
# database must be a file they can open too (Django's default is in memory).
# One file per test process, so parallel runs never share it.
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {
        "NAME": str(Path(tempfile.gettempdir()) / f"postwarden-test-{os.getpid()}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: broker, rate limits and the circuit breaker's shared state. Unset means
# the Redis that `make run` starts itself on LOCAL_REDIS_PORT.
LOCAL_REDIS_PORT = env_port("LOCAL_REDIS_PORT", 6479)
REDIS_URL = env_url(
    "REDIS_URL", f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0", schemes=("redis", "rediss", "unix")
)
REDIS_IS_EMBEDDED = not env_str("REDIS_URL")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "cache",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = env_str("LANGUAGE_CODE", "en")
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env_path("STATIC_ROOT", BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = DATA_DIR / "media"

LOGIN_URL = "admin:login"

# --- Admin login: throttling (django-axes) and optional TOTP (django-otp) ---
# After ADMIN_LOGIN_FAILURE_LIMIT failed logins for one username from one address,
# that pair is locked out for ADMIN_LOGIN_COOLOFF_MINUTES (HTTP 429). The address
# is the one newsletter.views.client_ip trusts (SIGNUP_TRUSTED_PROXIES).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("ADMIN_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("ADMIN_LOGIN_COOLOFF_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "newsletter.views.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# Admins who registered a TOTP device (Admin -> TOTP devices) must give its code
# at login; with ADMIN_REQUIRE_2FA=true every admin must (config.admin_site).
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA", False)
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Postwarden")

# --- HTTP API (issue 17). Tokens only (no session auth: no CSRF surface); every view
# checks the token's scope and the user's model permissions; throttles count in the
# Redis cache per token. See api/ and README "API".
# Wrong tokens per client network (IPv4 address, IPv6 /64) and minute before 429.
API_FAILED_AUTH_PER_MIN = env_int("API_FAILED_AUTH_PER_MIN", 20, minimum=1)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.TokenScope",
                                   "api.permissions.ModelPermissions"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env_str("API_RATE_PER_TOKEN", "600/min")},
    "DEFAULT_PAGINATION_CLASS": "api.pagination.IdCursorPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Postwarden API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page's scripts are served from here, not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "api.schema.add_problem_responses"],
}

# Security defaults; TLS termination is the deployment's concern.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("DJANGO_BEHIND_TLS_PROXY", False) else None
)

# Outgoing mail: the address system mail comes from, and the relay used when no
# relay pool is configured in the admin (by default the local SMTP sink).
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "newsletter@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
DEFAULT_RELAY_URL = env_url(
    "DEFAULT_RELAY_URL", "smtp://127.0.0.1:2525", schemes=("smtp", "smtps", "smtp+starttls")
)

# The local SMTP sink (development): where it listens and where it keeps mail.
SINK_HOST = env_str("SINK_HOST", "127.0.0.1")
SINK_PORT = env_port("SINK_PORT", 2525)
SINK_DIR = env_path("SINK_DIR", DATA_DIR / "sink")

# Celery: JSON only, late acks, one message prefetched, queues by purpose.
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "maintenance"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task not acknowledged within this time is handed to another worker; keep it
# above the longest task (tasks claim rows in the database, so a re-delivery
# finds nothing left to do).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# First admin account created by `make run` when none exists.
ADMIN_USERNAME = env_str("ADMIN_USERNAME", "admin")
ADMIN_EMAIL = env_str("ADMIN_EMAIL", "admin@localhost")

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "mail.log": {"level": "WARNING"},  # aiosmtpd logs every SMTP command at INFO
    },
}

from config.celery_schedule import BEAT_SCHEDULE as CELERY_BEAT_SCHEDULE  # noqa: E402, F401
