"""The local SMTP sink: accepts every message and keeps it in a Maildir.

Relays point at it by default, so a local run "sends" without reaching the
internet; the admin's "Sent mail (sink)" page shows what arrived.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from aiosmtpd.controller import Controller


class PipeliningHandler:
    """aiosmtpd reads commands one line at a time, so it handles pipelined ones
    (RFC 2920) as they come; this offers PIPELINING in the EHLO answer, as the
    relays the engine talks to in production (Postfix, Exim) do."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class SinkHandler(PipeliningHandler):
    """Stores each message with its envelope in extra headers at the top."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        self._maildir = mailbox.Maildir(str(self.directory), create=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        envelope_lines = (
            f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
            f"X-Sink-Rcpt-To: {', '.join(envelope.rcpt_tos)}\r\n"
            f"X-Sink-Received-At: {datetime.now(UTC).isoformat()}\r\n"
        ).encode()
        with self._lock:
            self._maildir.add(envelope_lines + envelope.content)
        return "250 2.0.0 Message accepted for delivery"


def start_sink(directory: Path, host: str = "127.0.0.1", port: int = 2525) -> Controller:
    controller = Controller(
        SinkHandler(directory), hostname=host, port=port, decode_data=False,
        data_size_limit=50 * 1024 * 1024,
    )
    controller.start()
    return controller


@dataclass
class SinkMessage:
    key: str
    mail_from: str
    rcpt_to: str
    subject: str
    received_at: datetime | None
    message: email.message.EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else ""


def _parse(key: str, raw: bytes) -> SinkMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        received = datetime.fromisoformat(str(message.get("X-Sink-Received-At", "")))
    except ValueError:
        try:
            received = parsedate_to_datetime(str(message.get("Date", "")))
        except (TypeError, ValueError):
            received = None
    return SinkMessage(
        key=key,
        mail_from=str(message.get("X-Sink-Mail-From", "")),
        rcpt_to=str(message.get("X-Sink-Rcpt-To", "")),
        subject=str(message.get("Subject", "")),
        received_at=received,
        message=message,
    )


def sink_messages(directory: Path) -> list[SinkMessage]:
    """All stored messages, newest first."""
    directory = Path(directory)
    if not directory.exists():
        return []
    box = mailbox.Maildir(str(directory), create=False)
    messages = [_parse(key, box.get_bytes(key)) for key in box.iterkeys()]
    oldest = datetime.min.replace(tzinfo=UTC)
    messages.sort(key=lambda m: m.received_at or oldest, reverse=True)
    return messages


def sink_message(directory: Path, key: str) -> SinkMessage | None:
    box = mailbox.Maildir(str(directory), create=False)
    try:
        return _parse(key, box.get_bytes(key))
    except KeyError:
        return None
