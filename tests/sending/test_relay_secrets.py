"""Relay passwords come only from RELAY_PASSWORD_* variables or the secrets folder."""

import os
import subprocess
import sys

import pytest

from sending.checks import stored_relay_passwords
from sending.models import Relay, RelayPool
from sending.relays import (
    RelaySecretError,
    parse_relay_url,
    password_name_check,
    relay_config,
    relay_password,
)
from tests.helpers import ROOT


def test_a_prefixed_variable_is_read(monkeypatch):
    monkeypatch.setenv("RELAY_PASSWORD_MAIN", "hunter2")
    config = parse_relay_url("smtp+starttls://u@relay.example:587?password_env=RELAY_PASSWORD_MAIN")
    assert config.password == "hunter2"


@pytest.mark.parametrize("name", ["DJANGO_SECRET_KEY", "DATABASE_URL", "BOUNCE_IMAP_PASSWORD",
                                  "RELAY_PASSWORD_", "relay_password_main",
                                  "RELAY_PASSWORD_../../etc/passwd", "RELAY_PASSWORD_A.B"])
def test_any_other_name_is_refused_with_a_clear_error(name):
    with pytest.raises(RelaySecretError, match="must start with RELAY_PASSWORD_"):
        password_name_check(name)


@pytest.mark.django_db
def test_a_stored_relay_naming_another_variable_gets_no_password(monkeypatch):
    monkeypatch.setenv("DJANGO_SECRET_KEY", "the-secret-key")
    pool = RelayPool.objects.create(name="p1", purpose="bulk")
    relay = Relay.objects.create(pool=pool, name="evil", host="127.0.0.1", port=25,
                                 tls_mode="none", password_env="DJANGO_SECRET_KEY")
    assert relay_config(relay).password == ""
    url = "smtp://u@127.0.0.1:25?password_env=DJANGO_SECRET_KEY"
    assert parse_relay_url(url).password == ""
    errors = stored_relay_passwords(None, databases=["default"])
    assert [e.id for e in errors] == ["sending.E002"] and "p1/evil" in errors[0].msg


def test_the_secrets_folder_is_read_when_the_variable_is_unset(monkeypatch, tmp_path):
    (tmp_path / "RELAY_PASSWORD_MAIN").write_text("from-a-file\n")
    (tmp_path / "OTHER").write_text("not this")
    monkeypatch.delenv("RELAY_PASSWORD_MAIN", raising=False)
    monkeypatch.setenv("RELAY_SECRETS_DIR", str(tmp_path))
    assert relay_password("RELAY_PASSWORD_MAIN") == "from-a-file"
    assert relay_password("RELAY_PASSWORD_NONE") == ""
    monkeypatch.setenv("RELAY_PASSWORD_MAIN", "from-the-environment")
    assert relay_password("RELAY_PASSWORD_MAIN") == "from-the-environment"
    with pytest.raises(RelaySecretError):
        relay_password("OTHER")


@pytest.mark.django_db
def test_the_admin_form_refuses_another_variable(admin_client):
    pool = RelayPool.objects.create(name="p2", purpose="bulk")
    form = {
        "name": "p2", "purpose": "bulk",
        "relays-TOTAL_FORMS": "1", "relays-INITIAL_FORMS": "0",
        "relays-MIN_NUM_FORMS": "0", "relays-MAX_NUM_FORMS": "1000",
        "relays-0-name": "evil", "relays-0-host": "127.0.0.1", "relays-0-port": "25",
        "relays-0-tls_mode": "none", "relays-0-password_env": "DJANGO_SECRET_KEY",
        "relays-0-max_connections": "4", "relays-0-max_rate_per_s": "50",
        "relays-0-priority": "100", "relays-0-enabled": "on",
    }
    response = admin_client.post(f"/admin/sending/relaypool/{pool.pk}/change/", form)
    assert response.status_code == 200  # the form again, with the error
    assert "is not a relay password variable" in response.content.decode()
    assert not Relay.objects.filter(name="evil").exists()
    form["relays-0-password_env"] = "RELAY_PASSWORD_EVIL"
    response = admin_client.post(f"/admin/sending/relaypool/{pool.pk}/change/", form)
    assert response.status_code == 302
    assert Relay.objects.get(name="evil").password_env == "RELAY_PASSWORD_EVIL"


def _check(relay_url: str):
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment["DEFAULT_RELAY_URL"] = relay_url
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)


def test_manage_py_check_fails_on_a_default_relay_naming_another_variable():
    result = _check("smtp+starttls://u@relay.example:587?password_env=DJANGO_SECRET_KEY")
    assert result.returncode != 0
    assert "sending.E001" in result.stderr and "DJANGO_SECRET_KEY" in result.stderr
    assert _check("smtp+starttls://u@relay.example:587?password_env=RELAY_PASSWORD_MAIN"
                  ).returncode == 0
