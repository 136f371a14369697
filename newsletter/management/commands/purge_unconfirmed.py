"""manage.py purge_unconfirmed [--days N]: what the scheduled job does."""

from django.core.management.base import BaseCommand

from newsletter.services import subscriptions_purge_unconfirmed


class Command(BaseCommand):
    help = "Delete subscriptions not confirmed within PENDING_PURGE_DAYS (the consent log stays)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int)

    def handle(self, *args, days=None, **options):
        purged = subscriptions_purge_unconfirmed(older_than_days=days)
        self.stdout.write(f"{purged} unconfirmed subscriptions purged")
