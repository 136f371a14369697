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
