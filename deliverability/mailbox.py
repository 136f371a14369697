"""IMAP polling of a bounce mailbox.

``poll(mailbox)`` stores and processes every message in the mailbox, then
moves it: understood ones to the done folder, the rest (unknown, or failed)
to the review folder. Nothing is ever deleted except by a move, and a message
that could not be stored stays where it is for the next poll.

``Mailbox`` is the small interface the polling needs; ``ImapMailbox`` is the
imaplib implementation.
"""

from __future__ import annotations

import imaplib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from django.db import reset_queries

from deliverability import conf
from deliverability.intake import ingest

logger = logging.getLogger(__name__)


class Mailbox(Protocol):
    def messages(self) -> Iterator[tuple[str, bytes | None]]:
        """(uid, raw bytes) of every message waiting in the polled folder; None for
        one larger than BOUNCE_MAX_BYTES, which is not fetched."""

    def move(self, uid: str, folder: str) -> None: ...


@dataclass
class PollResult:
    stored: int = 0
    done: int = 0
    review: int = 0
    failed: int = 0
    refused: int = 0


def poll(mailbox: Mailbox, *, done_folder: str, review_folder: str,
         max_bytes: int | None = None) -> PollResult:
    """Store and process each message; too large ones go to review unread, and those
    tied to no delivery of ours (review_reason) to review as well."""
    result = PollResult()
    limit = max_bytes or conf.BOUNCE_MAX_BYTES
    for uid, raw in mailbox.messages():
        if raw is None or len(raw) > limit:
            logger.warning("bounce mailbox: message %s is larger than %s bytes: refused, "
                           "moved to %s", uid, limit, review_folder)
            mailbox.move(uid, review_folder)
            result.refused += 1
            continue
        reset_queries()  # with DEBUG on, Django keeps every statement and its bytes
        try:
            message = ingest(raw, source="imap")
        except Exception:  # not stored: leave it in place for the next poll
            logger.exception("bounce mailbox: could not store message %s", uid)
            result.failed += 1
            continue
        result.stored += 1
        understood = message.processed_at is not None and not message.error and \
            message.outcome not in ("", "unknown", "error") and not message.review_reason
        mailbox.move(uid, done_folder if understood else review_folder)
        if understood:
            result.done += 1
        else:
            result.review += 1
    return result


class ImapMailbox:
    """One IMAP connection to the bounce mailbox (use as a context manager)."""

    def __init__(self, *, host: str, port: int, user: str, password: str, ssl: bool = True,
                 folder: str = "INBOX", timeout: float = 60, max_bytes: int | None = None):
        self.host, self.port, self.user, self.password = host, port, user, password
        self.ssl, self.folder, self.timeout = ssl, folder, timeout
        self.max_bytes = max_bytes or conf.BOUNCE_MAX_BYTES
        self.imap: imaplib.IMAP4 | None = None
        self._folders: set[str] = set()

    def __enter__(self) -> ImapMailbox:
        cls = imaplib.IMAP4_SSL if self.ssl else imaplib.IMAP4
        self.imap = cls(self.host, self.port, timeout=self.timeout)
        if not self.ssl and "STARTTLS" in self.imap.capabilities:
            self.imap.starttls()
        self.imap.login(self.user, self.password)
        _ok(self.imap.select(_quote(self.folder)))
        return self

    def __exit__(self, *exc) -> None:
        if self.imap is not None:
            try:
                self.imap.close()
                self.imap.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def messages(self) -> Iterator[tuple[str, bytes]]:
        data = _ok(self.imap.uid("SEARCH", None, "ALL"))
        for uid in (data[0] or b"").split():
            # The size first (RFC 3501 RFC822.SIZE): a message past the limit is not fetched.
            sized = _ok(self.imap.uid("FETCH", uid, "(RFC822.SIZE)"))
            found = re.search(rb"RFC822\.SIZE (\d+)", b" ".join(
                p if isinstance(p, bytes) else p[0] for p in sized if p))
            if found is None or int(found.group(1)) > self.max_bytes:
                yield uid.decode(), None
                continue
            # BODY.PEEK leaves \Seen alone: a failed message looks untouched.
            fetched = _ok(self.imap.uid("FETCH", uid, "(BODY.PEEK[])"))
            raw = next((part[1] for part in fetched if isinstance(part, tuple)), None)
            if raw is not None:
                yield uid.decode(), raw

    def move(self, uid: str, folder: str) -> None:
        if folder not in self._folders:
            self.imap.create(_quote(folder))  # fails harmlessly when it exists
            self._folders.add(folder)
        if "MOVE" in self.imap.capabilities:
            _ok(self.imap.uid("MOVE", uid, _quote(folder)))
            return
        # Without MOVE (RFC 6851): copy, and only then flag the original for expunge.
        _ok(self.imap.uid("COPY", uid, _quote(folder)))
        _ok(self.imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"))
        self.imap.expunge()


def _ok(answer):
    status, data = answer
    if status != "OK":
        raise imaplib.IMAP4.error(f"IMAP answered {status}: {data!r}")
    return data


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_./-]+", name) else '"' + name.replace(
        "\\", "\\\\").replace('"', '\\"') + '"'


def configured_mailbox() -> ImapMailbox | None:
    if not conf.BOUNCE_IMAP_HOST:
        return None
    return ImapMailbox(host=conf.BOUNCE_IMAP_HOST, port=conf.BOUNCE_IMAP_PORT,
                       user=conf.BOUNCE_IMAP_USER, password=conf.BOUNCE_IMAP_PASSWORD,
                       ssl=conf.BOUNCE_IMAP_SSL, folder=conf.BOUNCE_IMAP_MAILBOX)


def poll_configured() -> PollResult | None:
    """Poll the mailbox of the settings; None when no mailbox is configured."""
    mailbox = configured_mailbox()
    if mailbox is None:
        return None
    with mailbox:
        return poll(mailbox, done_folder=conf.BOUNCE_IMAP_DONE_FOLDER,
                    review_folder=conf.BOUNCE_IMAP_REVIEW_FOLDER)
