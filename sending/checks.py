"""System checks: relay passwords only from the allowed places (sending.relays)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections

from sending.relays import RelaySecretError, default_relay_password_name, password_name_check

HINT = "Put the password in RELAY_PASSWORD_<NAME> (a variable, or a file in RELAY_SECRETS_DIR)."


@register(Tags.security)
def default_relay_password(app_configs, **kwargs):
    try:
        password_name_check(default_relay_password_name(settings.DEFAULT_RELAY_URL))
    except RelaySecretError as error:
        return [Error(f"DEFAULT_RELAY_URL: {error}", hint=HINT, id="sending.E001")]
    return []


@register(Tags.database)
def stored_relay_passwords(app_configs, databases=None, **kwargs):
    """Relays saved before the rule (``migrate`` and ``check --database`` run this)."""
    from sending.models import Relay

    errors = []
    for alias in databases or []:
        try:
            rows = list(Relay.objects.using(alias).exclude(password_env="")
                        .values_list("pool__name", "name", "password_env"))
        except DatabaseError:  # not migrated yet
            connections[alias].close()
            continue
        for pool, name, password_env in rows:
            try:
                password_name_check(password_env)
            except RelaySecretError as error:
                errors.append(Error(f"relay {pool}/{name}: {error}", hint=HINT,
                                    id="sending.E002"))
    return errors
