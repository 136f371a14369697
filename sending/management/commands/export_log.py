import sys
from datetime import UTC, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError

from sending.retention import export_log


def _day(text: str) -> datetime:
    try:
        return datetime.combine(datetime.strptime(text, "%Y-%m-%d").date(), time(), UTC)
    except ValueError:
        raise CommandError(f"{text!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Export the SMTP delivery log of a period (UTC days) as CSV or JSON Lines."

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", help="last day included, YYYY-MM-DD (default: today)")
        parser.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        parser.add_argument("--output", "-o", help="file (default: standard output)")

    def handle(self, *args, since, until, format, output, **options):
        start = _day(since)
        end = _day(until) + timedelta(days=1) if until else datetime.now(UTC)
        if end <= start:
            raise CommandError("--until is before --since")
        if output:
            with open(output, "w", newline="", encoding="utf-8") as handle:
                count = export_log(handle, since=start, until=end, fmt=format)
        else:
            count = export_log(self.stdout, since=start, until=end, fmt=format)
        print(f"{count} attempts exported", file=sys.stderr)
