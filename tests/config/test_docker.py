"""The docker files are validated offline: hadolint and the compose-spec schema."""

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from config.celery import WORKER_GROUPS
from tests.helpers import ROOT

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


def test_dockerfile_passes_hadolint():
    result = subprocess.run([_tool("hadolint"), str(ROOT / "docker/Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_matches_compose_spec():
    result = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         str(ROOT / "docker/compose.yaml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_queue_group_beat_and_services():
    compose = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())
    services = compose["services"]
    for group, queues in WORKER_GROUPS.items():
        command = services[f"worker-{group}"]["command"]
        assert command[command.index("-Q") + 1] == ",".join(queues)
    assert {"web", "beat", "redis", "postgres"} <= set(services)


def test_image_runs_as_non_root_and_has_no_baked_secret():
    dockerfile = (ROOT / "docker/Dockerfile").read_text()
    assert "\nUSER " in dockerfile and "USER root" not in dockerfile
    assert "collectstatic-only" in dockerfile  # the only key, used at build time
    compose = (ROOT / "docker/compose.yaml").read_text()
    assert "DJANGO_SECRET_KEY: ${DJANGO_SECRET_KEY:?" in compose
    assert "DJANGO_DEBUG=true" not in dockerfile


# --- the whole .env reaches every app service -------------------------------------

APP_SERVICES_IMAGE = "postwarden:latest"
# Set by compose to the container's own value whatever .env says (paths inside the
# image, the compose network's database and Redis, production mode, fixed ports
# that .env maps on the host side).
PINNED = {"DJANGO_DEBUG", "DATABASE_URL", "REDIS_URL", "DATA_DIR", "SINK_DIR", "STATIC_ROOT",
          "PORT", "BOUNCE_LISTENER_HOST", "BOUNCE_LISTENER_PORT"}
# Read by the postgres container only.
POSTGRES_ONLY = {"POSTGRES_PASSWORD"}


def _env_example() -> list[str]:
    import re

    return re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE)


def _interpolate(value: str, dotenv: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default} and ${NAME:?error} against the .env."""
    import re

    def one(match):
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        current = dotenv.get(name, "")
        if op == ":?" and not current:
            raise AssertionError(f"compose would stop: {arg}")
        return current or (arg if op == ":-" else "")

    return re.sub(r"\$\{([A-Z0-9_]+)(:-|:\?)?([^}]*)\}", one, str(value))


def _service_environment(service: dict, dotenv: dict[str, str]) -> dict[str, str]:
    """The environment compose gives a service: env_file, then `environment` over it."""
    env = {}
    env_files = service.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str | dict) else env_files:
        path = entry["path"] if isinstance(entry, dict) else entry
        assert (ROOT / "docker" / path).resolve() == ROOT / ".env", path
        env.update(dotenv)
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env.update({k: _interpolate(v, dotenv) for k, v in environment.items()})
    return env


def test_every_variable_of_env_example_reaches_each_service_that_reads_it():
    names = _env_example()
    assert {"SIGNUP_TRUSTED_PROXIES", "BREAKER_WEBHOOK_URL", "DKIM_KEY_DIR", "BOUNCE_IMAP_HOST",
            "DJANGO_SECURE_COOKIES", "RELAY_SECRETS_DIR", "ADMIN_PASSWORD"} <= set(names)
    dotenv = {name: f"value-of-{name.lower()}" for name in names}
    services = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())["services"]
    app = {name: s for name, s in services.items() if s.get("image") == APP_SERVICES_IMAGE}
    assert {"migrate", "web", "beat", "bounces", *(f"worker-{g}" for g in WORKER_GROUPS)} \
        <= set(app)
    for service_name, service in app.items():
        env = _service_environment(service, dotenv)
        lost = [name for name in names if name not in PINNED | POSTGRES_ONLY
                and env.get(name) != dotenv[name]]
        assert lost == [], f"{service_name} does not get {lost} from .env"
        assert env["DJANGO_DEBUG"] == "false"
        assert env["DATABASE_URL"].endswith("@postgres:5432/postwarden")
        assert "value-of-postgres_password" in env["DATABASE_URL"]
    postgres = _service_environment(services["postgres"], dotenv)
    assert postgres["POSTGRES_PASSWORD"] == dotenv["POSTGRES_PASSWORD"]


def test_compose_stops_when_a_required_secret_is_missing():
    import pytest

    services = yaml.safe_load((ROOT / "docker/compose.yaml").read_text())["services"]
    dotenv = {name: "x" for name in _env_example()}
    dotenv["DJANGO_SECRET_KEY"] = ""
    with pytest.raises(AssertionError, match="set DJANGO_SECRET_KEY"):
        _service_environment(services["web"], dotenv)
