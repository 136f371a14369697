"""``manage.py ingest_bounce``: one message on stdin, for an MTA pipe transport.

Exit 0 once the message is stored (even when nothing in it is understood);
EX_DATAERR (65) when it is larger than BOUNCE_MAX_BYTES (refused while read,
nothing stored: the MTA returns it); EX_TEMPFAIL (75) only when it could not
be stored, so the MTA keeps it and retries.

Pass the envelope recipient (Postfix: ``${original_recipient}``): a report sent
to a VERP return path is tied to its delivery by that token. Without it a report
acts only when its returned headers tie it to a delivery (deliverability.evidence).
"""

import os
import sys

from django.core.management.base import BaseCommand

from deliverability import conf
from deliverability.intake import ingest_file
from deliverability.spool import TooLarge, read_limited

EX_TEMPFAIL = getattr(os, "EX_TEMPFAIL", 75)
EX_DATAERR = getattr(os, "EX_DATAERR", 65)


class Command(BaseCommand):
    help = "Store and process one bounce / complaint read from standard input."

    def add_arguments(self, parser):
        parser.add_argument("--recipient", action="append", default=[],
                            help="envelope recipient (Postfix: ${original_recipient})")

    def handle(self, *args, recipient, **options):
        try:
            spool = read_limited(sys.stdin.buffer, limit=conf.BOUNCE_MAX_BYTES,
                                 spool_bytes=conf.BOUNCE_SPOOL_BYTES)
        except TooLarge as exc:
            self.stderr.write(f"refused: {exc}")
            sys.exit(EX_DATAERR)
        try:
            with spool:
                message = ingest_file(spool, source="pipe", envelope_recipients=recipient)
        except Exception as exc:  # the MTA must keep the message: tell it to retry
            self.stderr.write(f"could not store the message: {exc!r}")
            sys.exit(EX_TEMPFAIL)
        review = f" (review: {message.review_reason})" if message.review_reason else ""
        self.stdout.write(f"stored {message.pk}: {message.outcome or 'unprocessed'}{review}")
