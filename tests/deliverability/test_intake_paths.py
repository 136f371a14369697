"""The pipe command and mailbox polling end in the same intake service."""

from __future__ import annotations

import subprocess
import sys

from deliverability.mailbox import poll
from deliverability.models import InboundMessage, Suppression
from sending.models import Delivery
from tests.deliverability.intake_support import FIXTURES, bounce_for, make_delivery
from tests.helpers import ROOT, subprocess_env


def run_pipe(raw: bytes, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", "ingest_bounce"], input=raw, cwd=ROOT,
                          env=subprocess_env(**env), capture_output=True, timeout=60)


def test_pipe_stores_and_acts_and_exits_zero(transactional_db):
    delivery = make_delivery("nobody@example.org")

    done = run_pipe(bounce_for("rfc3464_user_unknown", delivery))

    assert done.returncode == 0, done.stderr
    assert InboundMessage.objects.get().source == "pipe"
    assert Suppression.objects.filter(address="nobody@example.org").exists()
    assert Delivery.objects.get(id=delivery.id).state == Delivery.State.BOUNCED


def test_pipe_exits_zero_for_junk_it_stored(transactional_db):
    done = run_pipe(b"\x00\xff garbage, not a message \xfe")

    assert done.returncode == 0, done.stderr
    assert InboundMessage.objects.get().outcome == "unknown"


def test_pipe_asks_the_mta_to_retry_when_it_cannot_store(tmp_path):
    # A database that cannot be opened: the message must stay with the MTA.
    missing = tmp_path / "no-such-dir" / "db.sqlite3"

    done = run_pipe(b"Subject: x\n\nbody", DATABASE_URL=f"sqlite:///{missing}")

    assert done.returncode == 75, done.stderr
    assert b"could not store" in done.stderr


class MemoryMailbox:
    """The one stand-in: an in-memory IMAP folder tree behind deliverability.mailbox.Mailbox."""

    def __init__(self, messages: list[bytes]):
        self.folders: dict[str, dict[str, bytes]] = {
            "INBOX": {str(uid): raw for uid, raw in enumerate(messages, 1)}}

    def messages(self):
        yield from list(self.folders["INBOX"].items())

    def move(self, uid: str, folder: str) -> None:
        self.folders.setdefault(folder, {})[uid] = self.folders["INBOX"].pop(uid)


def test_polling_files_understood_mail_and_keeps_the_rest_for_review(transactional_db):
    delivery = make_delivery("nobody@example.org")
    bounce = bounce_for("rfc3464_user_unknown", delivery)
    junk = (FIXTURES / "bounces" / "not_a_bounce.eml").read_bytes()
    mailbox = MemoryMailbox([bounce, junk])

    result = poll(mailbox, done_folder="Processed", review_folder="Review")

    assert (result.stored, result.done, result.review, result.failed) == (2, 1, 1, 0)
    assert mailbox.folders == {"INBOX": {}, "Processed": {"1": bounce}, "Review": {"2": junk}}
    assert Suppression.objects.filter(address="nobody@example.org").exists()
    assert {m.source for m in InboundMessage.objects.all()} == {"imap"}


def test_polling_leaves_mail_it_could_not_store_in_place(transactional_db, monkeypatch):
    import deliverability.mailbox as mailbox_module

    def broken(raw, **kwargs):
        raise OSError("database went away")

    monkeypatch.setattr(mailbox_module, "ingest", broken)
    mailbox = MemoryMailbox([b"Subject: a\n\nb"])

    result = poll(mailbox, done_folder="Processed", review_folder="Review")

    assert (result.stored, result.failed) == (0, 1)
    assert mailbox.folders == {"INBOX": {"1": b"Subject: a\n\nb"}}
