"""manage.py import_subscribers FILE --list SLUG (--consent TEXT | --request-opt-in)"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from newsletter.imports import ImportStats, subscriber_import_run
from newsletter.models import MailingList, SubscriberImport


class ProgressBar:
    """One redrawn line on a terminal; a line per 10 % otherwise (logs stay readable)."""

    def __init__(self, stream, total: int):
        self.stream = stream
        self.total = max(total, 1)
        self.tty = stream.isatty()
        self.last_decile = -1

    def __call__(self, stats: ImportStats) -> None:
        fraction = min(stats.bytes_done / self.total, 1.0)
        rate = stats.rows_read / stats.seconds if stats.seconds else 0
        text = (f"{fraction:6.1%}  {stats.rows_read:,} rows  {rate:,.0f} rows/s  "
                f"{stats.rows_invalid:,} invalid")
        if self.tty:
            width = max(10, min(40, shutil.get_terminal_size().columns - len(text) - 4))
            filled = int(width * fraction)
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}")
            self.stream.flush()
        elif int(fraction * 10) > self.last_decile:
            self.last_decile = int(fraction * 10)
            self.stream.write(text + "\n")

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


class Command(BaseCommand):
    help = ("Import subscribers from a CSV file (header row with an 'email' column; 'name' "
            "and any other columns become attributes) into a list. Bad rows are reported "
            "and skipped; the rest is imported.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--list", required=True, dest="slug", help="slug of the list")
        consent = parser.add_mutually_exclusive_group(required=True)
        consent.add_argument("--consent", metavar="STATEMENT",
                             help="how everyone in the file agreed (they are subscribed at once)")
        consent.add_argument("--request-opt-in", action="store_true",
                             help="add rows as pending and mail each an opt-in request")
        parser.add_argument("--report", type=Path,
                            help="also write the report of skipped rows to this file")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, file: Path, slug: str, consent: str | None, request_opt_in: bool,
               report: Path | None, no_progress: bool, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        mailing_list = MailingList.objects.filter(slug=slug).first()
        if mailing_list is None:
            known = ", ".join(MailingList.objects.values_list("slug", flat=True)[:20]) or "none"
            raise CommandError(f"no list with slug {slug!r} (lists: {known})")
        if consent is not None and not consent.strip():
            raise CommandError("--consent needs a statement of how these people agreed")
        job = SubscriberImport.objects.create(
            mailing_list=mailing_list, source_name=file.name[:255], created_by="manage.py",
            mode=(SubscriberImport.Mode.REQUEST_OPT_IN if request_opt_in
                  else SubscriberImport.Mode.CONFIRMED),
            consent_statement=(consent or "").strip())
        bar = None if no_progress else ProgressBar(sys.stderr, file.stat().st_size)
        job = subscriber_import_run(import_id=job.id, path=file, progress=bar)
        if bar:
            bar.close()
        if job.state == SubscriberImport.State.FAILED:
            raise CommandError(f"import failed: {job.error}")
        if report and job.report:
            report.write_bytes(job.report.read())
        self.stdout.write(
            f"import {job.id}: {job.rows_read:,} rows read, {job.subscribers_created:,} new "
            f"subscribers, {job.subscriptions_created:,} added to {slug}, "
            f"{job.subscriptions_existing:,} already on it, {job.rows_duplicate:,} duplicates "
            f"merged, {job.rows_suppressed:,} suppressed, {job.rows_invalid:,} invalid")
        if job.report:
            self.stdout.write(f"report of skipped rows: {report or job.report.path}")
        if request_opt_in:
            self.stdout.write("opt-in requests are being mailed by the workers")
