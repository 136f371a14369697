from django.core.management.base import BaseCommand

from sending.retention import prune_attempts, retention_days


class Command(BaseCommand):
    help = "Delete SMTP attempts older than LOG_RETENTION_DAYS (default 180), in batches."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None)

    def handle(self, *args, days, **options):
        days = days or retention_days()
        self.stdout.write(f"pruned {prune_attempts(days=days)} attempts older than {days} days")
