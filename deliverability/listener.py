"""The SMTP listener of the bounce domain (aiosmtpd).

It accepts mail only for VERP return paths that decode (anything else gets
550 at RCPT, so it is no open mailbox for spam), and hands every message to
``intake.ingest``: 250 once stored, 451 (the sender retries) if it could not
be stored.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.controller import Controller
from django.db import close_old_connections

from deliverability import verp
from deliverability.intake import ingest

logger = logging.getLogger(__name__)


class BounceHandler:
    def __init__(self, domain: str):
        self.domain = domain.lower()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rpartition("@")[2].lower()
        if domain != self.domain or verp.decode(address) is None:
            return "550 5.1.1 No such bounce address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        loop = asyncio.get_running_loop()
        try:
            # The ORM is synchronous: run it in a worker thread, off the event loop.
            message = await loop.run_in_executor(None, _ingest, raw, list(envelope.rcpt_tos))
        except Exception:
            logger.exception("bounce listener: could not store a message")
            return "451 4.3.0 Could not store the message, try again later"
        return f"250 2.0.0 Stored as {message.pk}"


def _ingest(raw: bytes, recipients: list[str]):
    close_old_connections()
    try:
        return ingest(raw, source="smtp", envelope_recipients=recipients)
    finally:
        close_old_connections()


def start_listener(*, host: str, port: int, domain: str, max_bytes: int) -> Controller:
    controller = Controller(BounceHandler(domain), hostname=host, port=port, decode_data=False,
                            data_size_limit=max_bytes)
    controller.start()
    return controller
