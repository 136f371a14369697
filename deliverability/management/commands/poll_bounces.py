"""``manage.py poll_bounces``: poll the bounce mailbox once (BOUNCE_IMAP_* settings)."""

from django.core.management.base import BaseCommand, CommandError

from deliverability.mailbox import poll_configured


class Command(BaseCommand):
    help = "Fetch bounces from the IMAP mailbox, store and process them, file them away."

    def handle(self, *args, **options):
        result = poll_configured()
        if result is None:
            raise CommandError("no bounce mailbox configured (set BOUNCE_IMAP_HOST)")
        self.stdout.write(f"stored {result.stored}, done {result.done}, "
                          f"review {result.review}, failed {result.failed}, "
                          f"refused (too large) {result.refused}")
