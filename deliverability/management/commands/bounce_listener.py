"""``manage.py bounce_listener``: the SMTP server of the bounce (VERP) domain."""

import signal
import threading

from django.core.management.base import BaseCommand

from deliverability import conf
from deliverability.listener import start_listener


class Command(BaseCommand):
    help = "Receive bounces, complaints and replies by SMTP for the VERP bounce domain."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=conf.BOUNCE_LISTENER_HOST)
        parser.add_argument("--port", type=int, default=conf.BOUNCE_LISTENER_PORT)
        parser.add_argument("--domain", default=conf.BOUNCE_DOMAIN)

    def handle(self, *args, host, port, domain, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        controller = start_listener(host=host, port=port, domain=domain,
                                    max_bytes=conf.BOUNCE_MAX_BYTES)
        self.stdout.write(f"Bounce listener on {host}:{port} for @{domain}")
        self.stdout.flush()
        stop.wait()
        controller.stop()
