import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from sending.sink import start_sink


class Command(BaseCommand):
    help = "Run the local SMTP sink that stores every message it receives."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.SINK_HOST)
        parser.add_argument("--port", type=int, default=settings.SINK_PORT)
        parser.add_argument("--dir", default=str(settings.SINK_DIR))

    def handle(self, *args, host, port, dir, **options):
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        controller = start_sink(dir, host=host, port=port)
        self.stdout.write(f"SMTP sink listening on {host}:{port}, storing in {dir}")
        self.stdout.flush()
        stop.wait()
        controller.stop()
