import sys

from django.core.management.base import BaseCommand, CommandError

from deliverability.egress import check_egress


class Command(BaseCommand):
    help = ("Try an outgoing SMTP connection as this user and report whether the egress rule "
            "(docker/egress/) is in force. Run it as the web process's user. Exits 1 when open.")

    def add_arguments(self, parser):
        parser.add_argument("--target", required=True,
                            help="host:port of a mail server you are allowed to connect to")
        parser.add_argument("--timeout", type=float, default=5.0)

    def handle(self, *args, target: str, timeout: float, **options):
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise CommandError("--target must be host:port, e.g. mx.example.org:25")
        result = check_egress(host, int(port), timeout=timeout)
        self.stdout.write(("open: " if result.open else "blocked: ") + result.detail)
        if result.open:
            sys.exit(1)
