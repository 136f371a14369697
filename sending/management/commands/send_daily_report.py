from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from sending.report import send_daily_report


class Command(BaseCommand):
    help = "Mail the daily delivery report (default: yesterday, UTC) to the operators."

    def add_arguments(self, parser):
        parser.add_argument("--day", help="YYYY-MM-DD")

    def handle(self, *args, day, **options):
        try:
            when = datetime.strptime(day, "%Y-%m-%d").date() if day else None
        except ValueError:
            raise CommandError(f"{day!r} is not a date (YYYY-MM-DD)") from None
        self.stdout.write(f"report mailed to {send_daily_report(when)} operators")
