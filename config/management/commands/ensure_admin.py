import os
import secrets
import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = ("Create the first admin account when none exists, and say how to log in; fill "
            "the default layout's postal address (SENDER_POSTAL_ADDRESS, or asked).")

    def handle(self, *args, **options):
        self._account()
        self._postal_address()

    def _postal_address(self) -> None:
        """The first campaign's checklist needs it; see newsletter.first_run."""
        from newsletter.exceptions import InvalidInput
        from newsletter.first_run import default_layout_missing_address, postal_address_fill

        layout = default_layout_missing_address()
        if layout is None:
            return
        raw = os.environ.get("SENDER_POSTAL_ADDRESS", "")
        if not raw.strip() and sys.stdin.isatty():
            raw = input("Sender's postal address for the footer of every mail (required by "
                        "law; separate lines with commas or \\n), empty to skip: ")
        if raw.strip():
            try:
                postal_address_fill(raw)
            except InvalidInput as error:
                self.stderr.write(f"Postal address not set: {error}")
            else:
                self.stdout.write(self.style.SUCCESS(
                    f"Postal address set in the layout “{layout.name}”."))
                return
        url = f"{settings.SITE_URL}/admin/newsletter/layout/{layout.pk}/change/"
        self.stdout.write(self.style.WARNING(
            f"The layout “{layout.name}” has no sender's postal address, so campaigns cannot "
            f"be sent yet: set SENDER_POSTAL_ADDRESS and run this again, or fill it in at "
            f"{url}"))

    def _account(self) -> None:
        User = get_user_model()
        url = f"{settings.SITE_URL}/admin/"
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write(f"Admin: log in at {url}")
            return
        password = os.environ.get("ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=settings.ADMIN_USERNAME, email=settings.ADMIN_EMAIL, password=password
        )
        if os.environ.get("ADMIN_PASSWORD"):
            self.stdout.write(self.style.SUCCESS(
                f"Created admin account: log in at {url} as {settings.ADMIN_USERNAME!r} "
                "with the password from ADMIN_PASSWORD"
            ))
            return
        # A generated password goes into an owner-only file in the data folder, never
        # to the output: in docker that output is the migrate container's log.
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        path = settings.DATA_DIR / "initial-admin-password"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(password + "\n")
        path.chmod(0o600)
        self.stdout.write(self.style.SUCCESS(
            f"Created admin account: log in at {url} as {settings.ADMIN_USERNAME!r} "
            f"with the password in {path} (readable by its owner only; change the "
            "password after logging in, then delete the file)"
        ))
