"""The typed environment reader, and bad configuration stopping start-up cleanly."""

import os
import subprocess
import sys

import pytest

from config import env
from tests.helpers import ROOT


def test_int_reads_and_rejects(monkeypatch):
    monkeypatch.setenv("SOME_PORT", "8025")
    assert env.env_port("SOME_PORT", 1) == 8025
    monkeypatch.setenv("SOME_PORT", "eighty")
    with pytest.raises(env.ConfigError, match="SOME_PORT='eighty' is not an integer"):
        env.env_port("SOME_PORT", 1)
    monkeypatch.setenv("SOME_PORT", "70000")
    with pytest.raises(env.ConfigError, match="above the maximum"):
        env.env_port("SOME_PORT", 1)


def test_bool_is_strict(monkeypatch):
    monkeypatch.setenv("FLAG", "off")
    assert env.env_bool("FLAG", True) is False
    monkeypatch.setenv("FLAG", "maybe")
    with pytest.raises(env.ConfigError, match="FLAG"):
        env.env_bool("FLAG", True)


def test_an_empty_bool_keeps_its_default(monkeypatch):
    """`DJANGO_SECURE_COOKIES=` as listed in .env.example (and passed whole by compose)
    must not turn secure cookies off."""
    monkeypatch.setenv("FLAG", "")
    assert env.env_bool("FLAG", True) is True
    assert env.env_bool("FLAG", False) is False


def test_database_url_switches_engine(monkeypatch, tmp_path):
    monkeypatch.setenv("DB", "postgresql://someone@db.example:5433/news")
    config = env.database_config("DB", tmp_path / "x.sqlite3")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 5433, "news")
    monkeypatch.delenv("DB")
    assert env.database_config("DB", tmp_path / "x.sqlite3")["ENGINE"].endswith("sqlite3")


def _start(**overrides):
    environment = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PORT")}
    environment.update(overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment,
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"DATABASE_URL": "postgresql://user@host:notaport/db"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql-ish-garbage"}, "DATABASE_URL"),
        ({"PORT": "eighty"}, "PORT"),
        ({"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
    ],
)
def test_bad_configuration_is_one_clear_line(overrides, variable):
    result = _start(**overrides)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("configuration error:")
    assert variable in lines[0]
    assert "Traceback" not in result.stderr


def test_every_variable_is_documented():
    """Every env_* call's variable appears in .env.example."""
    import re

    documented = (ROOT / ".env.example").read_text()
    names = set()
    for path in [p for app in ("config", "newsletter", "sending", "deliverability")
                 for p in (ROOT / app).rglob("*.py")]:
        names |= set(re.findall(r'env_\w+\(\s*"([A-Z0-9_]+)"', path.read_text()))
    names |= set(re.findall(r'database_config\(\s*"([A-Z0-9_]+)"',
                            (ROOT / "config/settings.py").read_text()))
    missing = sorted(n for n in names if f"{n}=" not in documented)
    assert names and not missing, f"not in .env.example: {missing}"
