"""manage.py export_subscribers --list SLUG [--status confirmed] [-o FILE]"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from newsletter.imports import subscribers_export_csv
from newsletter.models import MailingList, Subscription


class Command(BaseCommand):
    help = "Export a list's subscriptions as CSV (the columns an import reads back)."

    def add_arguments(self, parser):
        parser.add_argument("--list", required=True, dest="slug")
        parser.add_argument("--status", action="append", choices=Subscription.Status.values,
                            help="only these statuses (repeatable; default: all)")
        parser.add_argument("-o", "--output", type=Path, help="file (default: stdout)")

    def handle(self, *args, slug: str, status: list[str] | None, output: Path | None,
               **options):
        mailing_list = MailingList.objects.filter(slug=slug).first()
        if mailing_list is None:
            raise CommandError(f"no list with slug {slug!r}")
        lines = subscribers_export_csv(mailing_list=mailing_list, statuses=status)
        if output is None:
            for line in lines:
                sys.stdout.write(line)
            return
        with output.open("w", encoding="utf-8", newline="") as stream:
            for line in lines:
                stream.write(line)
