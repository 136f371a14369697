import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from deliverability.identity import current_identity
from deliverability.received import explain, summary


class Command(BaseCommand):
    requires_system_checks = []  # needs no configuration: works on a fresh machine
    help = ("Explain each Received: hop of a message (HELO name, reverse DNS, IP, time) and "
            "whether it was sent through us. FILE may be - for standard input.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--json", action="store_true",
                            help="one JSON object per hop, then one with the verdict")

    def handle(self, *args, file, json: bool, **options):
        if file == "-":
            raw = sys.stdin.buffer.read()
        else:
            try:
                raw = Path(file).read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        result = explain(raw, current_identity())
        if json:
            for hop in result.hops:
                self.stdout.write(_dumps({k: v for k, v in hop.as_dict().items() if k != "raw"}))
            self.stdout.write(_dumps({"ours": result.ours}))
        else:
            self.stdout.write(summary(result))


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)
