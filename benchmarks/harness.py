"""Shared harness for benchmarks: a throwaway database, a private Redis, figures.

A benchmark does::

    from benchmarks.harness import Bench

    with Bench("transactional") as bench:   # sets up DB + Redis, then django.setup()
        ... measure ...
        bench.report(msgs_per_s=..., ratio=...)  # printed as the final JSON line

``DATABASE_URL`` set: a throwaway PostgreSQL database is created on that server
and dropped afterwards; otherwise a throwaway SQLite file. Nothing touches the
user's data.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from config.redis_server import PrivateRedis

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident set size of this process (or of its waited-for children), in MB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def _admin_connection(url: str):
    import psycopg

    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    return psycopg.connect(admin_url, autocommit=True)


class Bench:
    def __init__(self, name: str, *, migrate: bool = True):
        self.name = name
        self.migrate = migrate
        self.figures: dict = {"benchmark": name}
        self._tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self._pg_url: str | None = None
        self._db_name: str | None = None
        self.redis = PrivateRedis()
        self.started = time.monotonic()

    # --- set-up -------------------------------------------------------------
    def __enter__(self) -> Bench:
        base_url = os.environ.get("DATABASE_URL", "")
        if base_url.startswith(("postgres://", "postgresql://")):
            self._db_name = f"bench_{self.name}_{uuid.uuid4().hex[:8]}"
            with _admin_connection(base_url) as conn:
                conn.execute(f'CREATE DATABASE "{self._db_name}"')
            self._pg_url = urlunsplit(urlsplit(base_url)._replace(path=f"/{self._db_name}"))
            os.environ["DATABASE_URL"] = self._pg_url
            self.figures["database"] = "postgresql"
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{self._tmp / 'bench.sqlite3'}"
            self.figures["database"] = "sqlite"
        self._base_url = base_url
        self.redis.start()
        os.environ["REDIS_URL"] = self.redis.url
        os.environ["DATA_DIR"] = str(self._tmp)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        # Debug mode is off by default (as in production): a throwaway key for the run.
        os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()
        if self.migrate:
            from django.core.management import call_command

            call_command("migrate", verbosity=0, interactive=False)
        return self

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses (workers) that must share this run's DB and Redis."""
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    @property
    def tmp(self) -> Path:
        return self._tmp

    # --- output -------------------------------------------------------------
    def log(self, message: str) -> None:
        print(f"[{self.name} {time.monotonic() - self.started:7.1f}s] {message}", flush=True)

    def report(self, **figures) -> None:
        self.figures.update(figures)

    def __exit__(self, exc_type, exc, tb) -> None:
        from django.db import connections

        connections.close_all()
        self.redis.stop()
        if self._db_name:
            try:
                with _admin_connection(self._base_url) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self._db_name}" WITH (FORCE)')
            except Exception as error:  # cleanup must not hide the result
                print(f"could not drop {self._db_name}: {error}", file=sys.stderr)
            os.environ["DATABASE_URL"] = self._base_url
        shutil.rmtree(self._tmp, ignore_errors=True)
        if exc_type is None:
            self.figures["wall_s"] = round(time.monotonic() - self.started, 2)
            print(json.dumps(self.figures, sort_keys=False), flush=True)
