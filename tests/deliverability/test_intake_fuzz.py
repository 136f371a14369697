"""Fuzz: the real listener and the real ingest_bounce command under generated and cut messages.

Every message ends stored (250 / exit 0, the row holds exactly the bytes) or
refused with a reason (an SMTP 5xx text / exit 65 and a line on stderr);
nothing crashes and the listener keeps answering.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import smtplib
import sys

import pytest
from django.core.management import call_command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.redis_server import free_port
from deliverability.listener import start_listener
from deliverability.models import InboundMessage
from tests.deliverability.hostile_support import dsn
from tests.deliverability.intake_support import BOUNCE_DOMAIN, FIXTURES, make_delivery, return_path

run = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])
FIXTURE_NAMES = ["rfc3464_user_unknown", "arf_abuse_rfc5965", "microsoft_s3150_block",
                 "qmail_no_code_final", "sendmail_v5_transcript"]
LIMIT = 20_000

messages = st.one_of(
    st.binary(max_size=4000),
    st.text(max_size=3000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    # Real reports cut anywhere, with noise after the cut.
    st.builds(lambda name, cut, noise: (FIXTURES / "bounces" / f"{name}.eml").read_bytes()
              [:cut] + noise,
              st.sampled_from(FIXTURE_NAMES), st.integers(0, 4000), st.binary(max_size=60)),
    # Forged reports naming any number of recipients.
    st.builds(lambda rcpts, status: dsn(rcpts, status=status),
              st.lists(st.emails(), max_size=8), st.sampled_from(["5.1.1", "4.2.2", "5.7.1"])),
    # Past the size limit, and one very long line.
    st.integers(LIMIT + 1, LIMIT * 3).map(lambda n: b"Subject: big\r\n\r\n" + b"x\r\n" * (n // 3)),
    st.integers(1100, 5000).map(lambda n: b"Subject: " + b"y" * n + b"\r\n\r\nbody"),
)


def _key(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@pytest.fixture
def listening(transactional_db, redis_client):
    port = free_port()
    controller = start_listener(host="127.0.0.1", port=port, domain=BOUNCE_DOMAIN,
                                max_bytes=LIMIT, peer_connections=500, peer_rate_per_min=10_000)
    yield port
    controller.stop()


@run
@given(raw=messages)
def test_the_listener_stores_or_refuses_every_message_with_a_reason(listening, raw):
    rcpt = return_path(make_delivery("fuzz@example.org"))
    with smtplib.SMTP("127.0.0.1", listening, timeout=30) as smtp:
        smtp.ehlo()
        smtp.mail("")  # no SIZE declared: the limit is checked while reading
        smtp.rcpt(rcpt)
        code, text = smtp.data(raw)
        assert smtp.noop()[0] == 250  # still answering
    if code == 250:
        stored = InboundMessage.objects.get(pk=int(text.split()[-1]))
        assert stored.processed_at is not None and stored.size <= LIMIT
        if b"\n" not in raw.replace(b"\r\n", b""):  # smtplib alters bare-LF lines
            assert stored.raw in (raw, raw + b"\r\n")
    else:
        assert code == 552 and b"too big" in text and len(raw) > LIMIT, (code, text)


class _Stdin:
    def __init__(self, raw: bytes):
        self.buffer = io.BytesIO(raw)


@run
@given(raw=messages)
def test_ingest_bounce_stores_or_refuses_every_message_with_a_reason(db, raw, monkeypatch,
                                                                    capsys):
    from deliverability import conf

    monkeypatch.setattr(conf, "BOUNCE_MAX_BYTES", LIMIT)
    monkeypatch.setattr(sys, "stdin", _Stdin(raw))
    try:
        call_command("ingest_bounce")
        exit_code = 0
    except SystemExit as exit_:
        exit_code = exit_.code
    out, err = capsys.readouterr()
    if exit_code == 0:
        stored = InboundMessage.objects.get(key=_key(raw))
        assert stored.raw == raw and stored.processed_at is not None and out.startswith("stored")
        assert len(raw) <= LIMIT
    else:
        assert exit_code == 65 and "larger than" in err and len(raw) > LIMIT
        assert not InboundMessage.objects.filter(key=_key(raw)).exists()


class _Chunks:
    """Stands in for aiosmtpd's StreamReader: hands out the wire bytes in given pieces."""

    def __init__(self, pieces):
        self.pieces, self._limit, self._buffer = list(pieces), 1001, bytearray()

    async def read(self, n):
        return self.pieces.pop(0) if self.pieces else b""


lines = st.lists(st.one_of(st.sampled_from([b"", b".", b"..", b".x", b"a.b", b"\r", b"a\rb"]),
                           st.binary(max_size=40).map(lambda b: b.replace(b"\r\n", b"\n"))),
                 max_size=12)


@settings(max_examples=300, deadline=None)
@given(lines=lines, cuts=st.lists(st.integers(0, 2000), max_size=8))
def test_the_data_reader_unstuffs_and_finds_the_end_however_the_bytes_arrive(lines, cuts):
    import asyncio

    from deliverability.listener import BoundedSMTP

    message = b"".join(line + b"\r\n" for line in lines)
    wire = b"".join((b"." + line if line.startswith(b".") else line) + b"\r\n"
                    for line in lines) + b".\r\nQUIT\r\n"
    edges = sorted({c for c in cuts if c < len(wire)} | {0, len(wire)})
    server = BoundedSMTP.__new__(BoundedSMTP)  # only the reader is exercised
    server._reader = _Chunks(wire[a:b] for a, b in itertools.pairwise(edges))
    server.data_size_limit = 0
    out = io.BytesIO()

    size = asyncio.run(server._read_data(out))

    assert out.getvalue() == message and size == len(message)
    assert bytes(server._reader._buffer) + b"".join(server._reader.pieces) == b"QUIT\r\n"
