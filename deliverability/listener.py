"""The SMTP listener of the bounce domain (aiosmtpd), bounded in connections, rate and memory.

It accepts mail only for VERP return paths that decode and for mailto
unsubscribe addresses whose token verifies (anything else gets 550 at RCPT,
so it is no open mailbox for spam), and hands every message to
``intake.ingest_file``: 250 once stored, 451 (the sender retries) if it could
not be stored.

Limits, so that nobody can exhaust the host (``deliverability.conf``):

- at most ``max_connections`` open sessions, ``peer_connections`` per peer IP
  and ``peer_rate_per_min`` new sessions per peer IP a minute; beyond, the
  connection is answered ``421`` and closed (RFC 5321 4.3.2: try again later);
- the message size is checked while DATA is read: past ``max_bytes`` nothing
  more is kept and the answer is ``552`` once the data ends (RFC 5321 4.5.3.1.10);
- the data goes to a temporary file above ``spool_bytes`` (memory stays flat
  however large or many the messages are);
- large messages are stored by their own small thread pool, so a small bounce
  is never queued behind them.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP
from django.db import close_old_connections, reset_queries

from deliverability import conf, verp
from deliverability.evidence import mailto_unsubscribe_token
from deliverability.intake import ingest_file, unsubscribe_token_valid

logger = logging.getLogger(__name__)

TOO_MANY = b"421 4.7.0 Too many connections, try again later\r\n"
DATA_CHUNK = 64 * 1024
_END = b"\r\n.\r\n"


@dataclass
class Limits:
    """Connection accounting, touched only from the listener's event loop thread."""

    max_connections: int
    peer_connections: int
    peer_rate_per_min: int
    active: int = 0
    by_peer: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    recent: dict[str, deque] = field(default_factory=dict)

    def admit(self, peer: str) -> bool:
        now = time.monotonic()
        times = self.recent.setdefault(peer, deque())
        while times and times[0] < now - 60:
            times.popleft()
        if (self.active >= self.max_connections or self.by_peer[peer] >= self.peer_connections
                or len(times) >= self.peer_rate_per_min):
            return False
        times.append(now)
        self.active += 1
        self.by_peer[peer] += 1
        if len(self.recent) > 10_000:  # forget quiet peers
            for quiet in [p for p, t in self.recent.items() if not t]:
                del self.recent[quiet]
        return True

    def release(self, peer: str) -> None:
        self.active -= 1
        self.by_peer[peer] -= 1
        if self.by_peer[peer] <= 0:
            del self.by_peer[peer]


class BoundedSMTP(SMTP):
    """aiosmtpd's server with the connection limits and DATA spooled to a file."""

    def __init__(self, handler, *, limits: Limits, spool_bytes: int, **kwargs):
        super().__init__(handler, **kwargs)
        self.limits, self.spool_bytes = limits, spool_bytes
        self._admitted: str | None = None
        self._refused = False

    def connection_made(self, transport) -> None:
        peer = transport.get_extra_info("peername")
        host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
        if self._admitted is None and not self._refused:
            if not self.limits.admit(host):
                self._refused = True
                logger.warning("bounce listener: refused a connection from %s (limits)", host)
                transport.write(TOO_MANY)
                transport.close()
                return
            self._admitted = host
        super().connection_made(transport)

    def connection_lost(self, error) -> None:
        if self._refused:
            return
        if self._admitted is not None:
            self.limits.release(self._admitted)
            self._admitted = None
        super().connection_lost(error)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def eof_received(self):
        if self._refused:
            return None
        return super().eof_received()

    async def smtp_DATA(self, arg: str) -> None:
        """RFC 5321 4.1.1.4 DATA, read in chunks into a spooled file, the size limit
        checked as it is read (aiosmtpd keeps every line in memory, one object each)."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        spool = tempfile.SpooledTemporaryFile(max_size=self.spool_bytes)
        try:
            size = await self._read_data(spool)
            if size is None:
                return  # the connection went away mid-message
            if self.data_size_limit and size > self.data_size_limit:
                logger.warning("bounce listener: refused a message of over %s bytes",
                               self.data_size_limit)
                self._set_post_data_state()
                await self.push("552 5.3.4 Message too big for the bounce listener")
                return
            self.envelope.spool = spool
            self.envelope.size = size
            status = await self._call_handler_hook("DATA")
            self._set_post_data_state()
            await self.push(status)
        finally:
            spool.close()

    async def _read_data(self, spool) -> int | None:
        """Write the message (dots unstuffed, RFC 5321 4.5.2) to ``spool`` until the
        lone dot; past the size limit keep reading but write nothing. Returns the
        size, or None when the connection closed first."""
        reader = self._reader
        limit = self.data_size_limit or 0
        # A line start before the data: the end marker and a stuffed dot both follow a
        # CRLF; these two virtual bytes are not part of the message (``skip``).
        data, size, skip = bytearray(b"\r\n"), 0, 2
        # Read up to DATA_CHUNK at a time (StreamReader pauses the socket at twice this).
        reader._limit, saved = DATA_CHUNK, reader._limit
        try:
            while True:
                chunk = await reader.read(DATA_CHUNK)
                if not chunk:
                    return None
                data += chunk
                end = data.find(_END)
                if end >= 0:
                    rest = data[end + len(_END):]
                    if rest:  # bytes after the end: the next command; give them back
                        reader._buffer[:0] = rest
                    cut = end + 2  # the CRLF that ends the last line is the message's
                else:
                    # Keep a tail that may begin the end marker (or a stuffed dot).
                    cut = len(data) - next((k for k in (4, 3, 2, 1)
                                            if data.endswith(_END[:k])), 0)
                part = bytes(data[:cut]).replace(b"\r\n.", b"\r\n")
                if skip:
                    dropped = min(skip, len(part))
                    part, skip = part[dropped:], skip - dropped
                size += len(part)
                if not limit or size <= limit:
                    spool.write(part)
                if end >= 0:
                    return size
                data = data[cut:]
        finally:
            reader._limit = saved


class BounceHandler:
    def __init__(self, domain: str, *, mailto_domains=(), spool_bytes: int = 256 * 1024,
                 small: ThreadPoolExecutor | None = None,
                 large: ThreadPoolExecutor | None = None):
        self.domain = domain.lower()
        self.mailto_domains = [d.lower() for d in mailto_domains if d]
        self.spool_bytes = spool_bytes
        self.small = small or ThreadPoolExecutor(4, thread_name_prefix="bounce-small")
        self.large = large or ThreadPoolExecutor(2, thread_name_prefix="bounce-large")

    def accepts(self, address: str) -> bool:
        domain = address.rpartition("@")[2].lower()
        if domain == self.domain and verp.decode(address) is not None:
            return True
        token = mailto_unsubscribe_token(address, self.mailto_domains)
        return token is not None and unsubscribe_token_valid(token)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.accepts(address):
            return "550 5.1.1 No such bounce address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        spool = getattr(envelope, "spool", None)
        if spool is None:  # a plain aiosmtpd server: the bytes are in memory
            spool = tempfile.SpooledTemporaryFile(max_size=self.spool_bytes)
            spool.write(envelope.original_content or envelope.content or b"")
        pool = self.large if getattr(envelope, "size", 0) > self.spool_bytes else self.small
        loop = asyncio.get_running_loop()
        try:
            # The ORM is synchronous: run it in a worker thread, off the event loop.
            message = await loop.run_in_executor(pool, _ingest, spool,
                                                 list(envelope.rcpt_tos))
        except Exception:
            logger.exception("bounce listener: could not store a message")
            return "451 4.3.0 Could not store the message, try again later"
        return f"250 2.0.0 Stored as {message.pk}"


def _ingest(spool, recipients: list[str]):
    close_old_connections()
    try:
        return ingest_file(spool, source="smtp", envelope_recipients=recipients)
    finally:
        # With DEBUG on, Django keeps every statement (a stored message's bytes with it).
        reset_queries()
        close_old_connections()


class BounceController(Controller):
    def __init__(self, handler, *, limits: Limits, spool_bytes: int, **kwargs):
        self.limits, self.spool_bytes = limits, spool_bytes
        super().__init__(handler, **kwargs)

    def factory(self):
        return BoundedSMTP(self.handler, limits=self.limits, spool_bytes=self.spool_bytes,
                           **self.SMTP_kwargs)


def start_listener(*, host: str, port: int, domain: str, max_bytes: int | None = None,
                   mailto_domains=None, max_connections: int | None = None,
                   peer_connections: int | None = None, peer_rate_per_min: int | None = None,
                   spool_bytes: int | None = None) -> Controller:
    spool_bytes = spool_bytes or conf.BOUNCE_SPOOL_BYTES
    limits = Limits(max_connections=max_connections or conf.BOUNCE_LISTENER_MAX_CONNECTIONS,
                    peer_connections=peer_connections or conf.BOUNCE_LISTENER_PEER_CONNECTIONS,
                    peer_rate_per_min=peer_rate_per_min or conf.BOUNCE_LISTENER_PEER_RATE_PER_MIN)
    handler = BounceHandler(domain, spool_bytes=spool_bytes,
                            mailto_domains=(conf.UNSUBSCRIBE_MAILTO_DOMAINS
                                            if mailto_domains is None else mailto_domains))
    controller = BounceController(handler, limits=limits, spool_bytes=spool_bytes,
                                  hostname=host, port=port, decode_data=False,
                                  data_size_limit=max_bytes or conf.BOUNCE_MAX_BYTES)
    controller.start()
    return controller
