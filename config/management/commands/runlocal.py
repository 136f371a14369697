import sys
from functools import partial

from django.conf import settings
from django.core.management.base import BaseCommand

from config.celery import WORKER_GROUPS
from config.redis_server import free_port, redis_command, wait_for_port
from config.spamd_server import INSTALL_HINT, spamd_binary, spamd_command
from config.supervisor import Service, Supervisor

WORKER_CONCURRENCY = {"transactional": 2, "bulk": 2, "ops": 1}


def services() -> list[Service]:
    python = sys.executable
    manage = [python, str(settings.BASE_DIR / "manage.py")]
    celery = [python, "-m", "celery", "-A", "config"]
    env = {"REDIS_URL": settings.REDIS_URL}
    result = []
    if settings.REDIS_IS_EMBEDDED:
        result.append(Service(
            "redis", redis_command(settings.LOCAL_REDIS_PORT),
            ready=partial(wait_for_port, "127.0.0.1", settings.LOCAL_REDIS_PORT),
        ))
    result.append(Service(
        "sink", [*manage, "smtp_sink"], env=env,
        ready=partial(wait_for_port, settings.SINK_HOST, settings.SINK_PORT, 30),
    ))
    result.append(Service("bounces", [*manage, "bounce_listener"], env=env))
    spamd, web_env = spamd_service(), dict(env)
    if spamd is not None:
        result.append(spamd)
        web_env["SPAMD_URL"] = spamd.env["SPAMD_URL"]
    result.append(Service(
        "web", [*manage, "runserver", f"127.0.0.1:{settings.PORT}", "--noreload"],
        env=web_env,
    ))
    for group, queues in WORKER_GROUPS.items():
        result.append(Service(f"worker-{group}", [
            *celery, "worker", "-Q", ",".join(queues), "-n", f"{group}@%h",
            "-c", str(WORKER_CONCURRENCY.get(group, 1)), "--loglevel", "INFO",
            "--without-gossip", "--without-mingle",
        ], env=env))
    result.append(Service("beat", [*celery, "beat", "--loglevel", "INFO"], env=env))
    return result


def spamd_service(out=sys.stdout) -> Service | None:
    """A spamd for the checklist's SpamAssassin score, unless SPAMD_URL names one."""
    import os

    if os.environ.get("SPAMD_URL"):
        return None
    binary = spamd_binary()
    if binary is None:
        out.write(f"No spamd: the checklist shows no SpamAssassin score ({INSTALL_HINT}).\n")
        return None
    port = free_port()
    # Its rules take a few seconds to compile; the web process starts after.
    return Service("spamd", spamd_command(binary, port, settings.DATA_DIR / "spamd"),
                   env={"SPAMD_URL": f"spamd://127.0.0.1:{port}"},
                   ready=partial(wait_for_port, "127.0.0.1", port, 90))


class Command(BaseCommand):
    help = "Run web, workers, beat, a private Redis and the SMTP sink in one terminal."

    def handle(self, *args, **options):
        self.stdout.write(
            f"Starting on {settings.SITE_URL}/ (admin: {settings.SITE_URL}/admin/); "
            "Ctrl-C stops everything."
        )
        code = Supervisor(services()).run()
        if code:
            sys.exit(code)
