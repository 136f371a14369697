"""System checks of the project (``manage.py check``, and before migrate and runserver)."""

from __future__ import annotations

from django.core import checks

from config.startup import MISSING_SECRET_KEY, secret_key_missing


@checks.register(checks.Tags.security)
def secret_key_check(app_configs, **kwargs) -> list[checks.CheckMessage]:
    if secret_key_missing():
        return [checks.Error(MISSING_SECRET_KEY, hint="Set it in .env (see .env.example); "
                             "make run sets DJANGO_DEBUG=true for itself.", id="project.E001")]
    return []
