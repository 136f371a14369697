"""``manage.py ingest_bounce``: one message on stdin, for an MTA pipe transport.

Exit 0 once the message is stored (even when nothing in it is understood);
EX_TEMPFAIL (75) only when it could not be stored, so the MTA keeps it and retries.
"""

import os
import sys

from django.core.management.base import BaseCommand

from deliverability.intake import ingest

EX_TEMPFAIL = getattr(os, "EX_TEMPFAIL", 75)


class Command(BaseCommand):
    help = "Store and process one bounce / complaint read from standard input."

    def add_arguments(self, parser):
        parser.add_argument("--recipient", action="append", default=[],
                            help="envelope recipient (Postfix: ${original_recipient})")

    def handle(self, *args, recipient, **options):
        raw = sys.stdin.buffer.read()
        try:
            message = ingest(raw, source="pipe", envelope_recipients=recipient)
        except Exception as exc:  # the MTA must keep the message: tell it to retry
            self.stderr.write(f"could not store the message: {exc!r}")
            sys.exit(EX_TEMPFAIL)
        self.stdout.write(f"stored {message.pk}: {message.outcome or 'unprocessed'}")
