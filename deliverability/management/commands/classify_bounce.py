"""``manage.py classify_bounce FILE...``: one JSON line per file (DESIGN.md contract)."""

import json
import sys

from django.core.management.base import BaseCommand

from deliverability.classify import classify_message, unknown_result


class Command(BaseCommand):
    help = "Classify bounce / complaint / auto-reply messages; prints one JSON line per file."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="message files ('-' reads stdin)")

    def handle(self, *args, **options):
        for name in options["files"]:
            try:
                raw = sys.stdin.buffer.read() if name == "-" else _read(name)
                results = classify_message(raw)
                line = {"file": name, "results": results}
            except OSError as e:  # a missing file is reported on its own line, the rest go on
                line = {"file": name, "results": [unknown_result()], "error": str(e)}
            self.stdout.write(json.dumps(line, ensure_ascii=False))


def _read(name: str) -> bytes:
    with open(name, "rb") as fh:
        return fh.read()
