"""``manage.py classify_bounce FILE...``: one JSON line per file (DESIGN.md contract)."""

import json
import sys

from django.core.management.base import BaseCommand

from deliverability.classify import classify_message, unknown_result, with_breaker_class


class Command(BaseCommand):
    requires_system_checks = []  # needs no configuration: works on a fresh machine
    help = ("Classify bounce / complaint / auto-reply messages; prints one JSON line per file "
            "(each result with its breaker_class).")

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="message files ('-' reads stdin)")

    def handle(self, *args, **options):
        for name in options["files"]:
            try:
                raw = sys.stdin.buffer.read() if name == "-" else _read(name)
                # each result carries the breaker's class from the same decision
                results = [with_breaker_class(r) for r in classify_message(raw)]
                line = {"file": name, "results": results}
            except OSError as e:  # a missing file is reported on its own line, the rest go on
                line = {"file": name, "results": [unknown_result()], "error": str(e)}
            self.stdout.write(json.dumps(line, ensure_ascii=False))


def _read(name: str) -> bytes:
    with open(name, "rb") as fh:
        return fh.read()
