"""One peer's send run, executed by the peers' throwaway venv (see ``benchmarks.peers``).

    python peer_runner.py MODE N PORT KEY_PEM DB_PATH

MODE is ``post_office``, ``post_office_dkim``, ``django_loop`` or
``django_loop_dkim``. It imports nothing of Postwarden: Django, the peer and
dkimpy only, configured here. It queues/builds N messages first (not timed),
prints ``start``, sends them to the sink on 127.0.0.1:PORT, and prints ``done``.
"""

from __future__ import annotations

import sys

HTML = ("<html><body><h1>News for you</h1>"
        + "<p>Paragraph of newsletter text with a <a href=\"https://example.org/a\">link</a>."
          " Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n" * 18
        + "<p><a href=\"https://news.example.org/u/x/\">Unsubscribe</a></p></body></html>")
TEXT = ("Hello,\n\n"
        + "Paragraph of newsletter text. Lorem ipsum dolor sit amet, consectetur elit.\n" * 18
        + "\nUnsubscribe: https://news.example.org/u/x/\n")
SIGNED = [b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
          b"content-type"]


def configure(mode: str, port: int, db_path: str, key_path: str) -> None:
    import django
    from django.conf import settings

    backend = ("peer_runner.SigningBackend" if mode.endswith("_dkim")
               else "django.core.mail.backends.smtp.EmailBackend")
    settings.configure(
        INSTALLED_APPS=["django.contrib.contenttypes", "post_office"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db_path}},
        EMAIL_BACKEND=backend, EMAIL_HOST="127.0.0.1", EMAIL_PORT=port,
        POST_OFFICE={"BACKENDS": {"default": backend}, "LOG_LEVEL": 0},
        USE_TZ=True, DEFAULT_FROM_EMAIL="news@example.org", PEER_DKIM_KEY=key_path,
        LOGGING_CONFIG=None,
    )
    django.setup()


def signing_backend():
    import dkim
    from django.conf import settings
    from django.core.mail.backends.smtp import EmailBackend
    from django.core.mail.message import sanitize_address

    key = open(settings.PEER_DKIM_KEY, "rb").read()

    class Backend(EmailBackend):
        """Django's SMTP backend with a dkimpy signature, as a user would add one."""

        def _send(self, email_message):
            if not email_message.recipients():
                return False
            encoding = email_message.encoding or settings.DEFAULT_CHARSET
            from_email = sanitize_address(email_message.from_email, encoding)
            recipients = [sanitize_address(a, encoding) for a in email_message.recipients()]
            data = email_message.message().as_bytes(linesep="\r\n")
            data = dkim.sign(data, b"pw1", b"example.org", key, include_headers=SIGNED) + data
            self.connection.sendmail(from_email, recipients, data)
            return True

    return Backend


def main() -> None:
    mode, n, port, key_path, db_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        sys.argv[4], sys.argv[5]
    sys.modules.setdefault("peer_runner", sys.modules[__name__])
    configure(mode, port, db_path, key_path)
    globals()["SigningBackend"] = signing_backend()
    from django.core.management import call_command

    recipients = [f"reader{i}@example{i % 40}.net" for i in range(n)]
    if mode.startswith("post_office"):
        call_command("migrate", verbosity=0)
        from post_office.models import STATUS, Email

        Email.objects.bulk_create(
            [Email(from_email="News <news@example.org>", to=[rcpt], subject="News for you",
                   message=TEXT, html_message=HTML, status=STATUS.queued)
             for rcpt in recipients], batch_size=2000)
        print("start", flush=True)
        call_command("send_queued_mail", processes=2)
    else:
        from django.core.mail import EmailMultiAlternatives, get_connection

        print("start", flush=True)
        with get_connection() as connection:
            for rcpt in recipients:
                message = EmailMultiAlternatives("News for you", TEXT, "News <news@example.org>",
                                                 [rcpt], connection=connection)
                message.attach_alternative(HTML, "text/html")
                message.send()
    print("done", flush=True)


if __name__ == "__main__":
    main()
