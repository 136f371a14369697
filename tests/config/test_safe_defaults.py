"""Safe defaults: debug off unless asked, login throttling, TOTP, no password in logs."""

import os
import re
import stat
import subprocess
import sys

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client, override_settings

from tests.helpers import ROOT


def _environment(**overrides):
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "DATABASE_URL")}
    environment["DJANGO_SETTINGS_MODULE"] = "config.settings"
    environment.update(overrides)
    return environment


def test_debug_is_off_unless_asked_for():
    code = "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=_environment(DJANGO_SECRET_KEY="k" * 50), timeout=60)
    assert run.stdout.strip() == "False", run.stderr
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, capture_output=True,
                         text=True, env=_environment(), timeout=60)
    assert run.returncode == 2 and "DJANGO_SECRET_KEY must be set" in run.stderr
    # The web application refuses to start without one, and so do workers and beat.
    run = subprocess.run([sys.executable, "-c", "import config.wsgi"], cwd=ROOT,
                         capture_output=True, text=True, env=_environment(), timeout=60)
    assert run.returncode != 0 and "DJANGO_SECRET_KEY must be set" in run.stderr
    from config.celery import _refuse_without_secret_key
    from config.env import ConfigError

    with override_settings(SECRET_KEY=""), pytest.raises(ConfigError):
        _refuse_without_secret_key()


def test_commands_that_need_no_configuration_run_without_a_secret_key(tmp_path):
    # What a fresh machine (or a scorer of the classifier) runs: no .env, debug off.
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(b"From: MAILER-DAEMON@example.org\r\nSubject: Undelivered\r\n\r\n"
                       b"550 5.1.1 <gone@example.net>: Recipient address rejected\r\n")
    for command in (["classify_bounce", str(bounce)], ["explain_headers", str(bounce)]):
        run = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT,
                             capture_output=True, text=True, timeout=60,
                             env=_environment(DATA_DIR=str(tmp_path / "data")))
        assert run.returncode == 0, run.stderr
    code = ("import django; django.setup(); from deliverability.classify import "
            f"classify_message; print(classify_message(open({str(bounce)!r}, 'rb').read()))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, env=_environment(), timeout=60)
    assert run.returncode == 0 and "userunknown" in run.stdout, run.stderr


def test_env_example_ships_debug_off():
    text = (ROOT / ".env.example").read_text()
    assert re.search(r"^DJANGO_DEBUG=false$", text, re.MULTILINE)


def test_make_run_turns_debug_on_for_itself_only(tmp_path):
    """`make run` with a stand-in interpreter that reports what each step sees."""
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\necho "$2 DJANGO_DEBUG=${DJANGO_DEBUG:-unset}"\n')
    python.chmod(0o755)
    stamp = tmp_path / "installed"
    stamp.touch()  # newer than pyproject.toml: nothing is installed

    def make(target, **env):
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("DJANGO_DEBUG", "MAKEFLAGS")}
        environment.update(env)
        return subprocess.run(["make", "-s", "--no-print-directory", target, f"PY={python}",
                               f"STAMP={stamp}"], cwd=ROOT, capture_output=True, text=True,
                              env=environment, timeout=60).stdout.split()

    assert make("run") == ["migrate", "DJANGO_DEBUG=true", "ensure_admin", "DJANGO_DEBUG=true",
                           "runlocal", "DJANGO_DEBUG=true"]
    assert make("run", DJANGO_DEBUG="false").count("DJANGO_DEBUG=false") == 3
    assert make("migrate") == ["migrate", "DJANGO_DEBUG=unset"]


@pytest.mark.django_db
def test_a_generated_admin_password_is_never_printed(settings, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    settings.DATA_DIR = tmp_path
    call_command("ensure_admin")
    output = capsys.readouterr().out
    path = tmp_path / "initial-admin-password"
    password = path.read_text().strip()
    assert len(password) >= 12 and password not in output
    assert str(path) in output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert get_user_model().objects.get(username=settings.ADMIN_USERNAME).check_password(password)


def _login(client, username, password, **extra):
    return client.post("/admin/login/?next=/admin/", {"username": username,
                                                      "password": password, **extra})


@pytest.mark.django_db
def test_admin_login_is_throttled_per_username_and_address(settings):
    settings.AXES_FAILURE_LIMIT = 3
    get_user_model().objects.create_superuser("boss", "boss@example.org", "right-password-1")
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [_login(client, "boss", "wrong").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # the form with an error, then locked out
    response = _login(client, "boss", "right-password-1")
    assert response.status_code == 429  # locked out, even with the right password
    assert "_auth_user_id" not in client.session
    other = Client(REMOTE_ADDR="198.51.100.4")  # the owner, from elsewhere, still gets in
    assert _login(other, "boss", "right-password-1").status_code == 302
    call_command("axes_reset")
    assert _login(client, "boss", "right-password-1").status_code == 302


@pytest.mark.django_db
def test_an_admin_with_a_totp_device_needs_its_code(settings):
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = get_user_model().objects.create_superuser("ann", "ann@example.org", "ann-password-1")
    plain = get_user_model().objects.create_superuser("bob", "bob@example.org", "bob-password-1")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)

    client = Client()
    response = _login(client, "ann", "ann-password-1")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    response = _login(client, "ann", "ann-password-1", otp_token="000000")
    assert "_auth_user_id" not in client.session
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"
    response = _login(client, "ann", "ann-password-1", otp_device=device.persistent_id,
                      otp_token=code)
    assert response.status_code == 302 and client.get("/admin/").status_code == 200

    # A session that never gave the code (logged in another way) is not let in.
    sneaky = Client()
    sneaky.force_login(user)
    assert sneaky.get("/admin/").status_code == 302

    # Two-factor is optional for who has no device, unless it is required for everyone.
    client = Client()
    assert _login(client, "bob", "bob-password-1").status_code == 302
    settings.ADMIN_REQUIRE_2FA = True
    client = Client()
    assert _login(client, "bob", "bob-password-1").status_code == 200
    assert "_auth_user_id" not in client.session
    assert plain.is_active
