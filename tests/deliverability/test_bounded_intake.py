"""Bounded intake: memory, connections, sizes and storage cannot be exhausted from outside."""

from __future__ import annotations

import base64
import os
import smtplib
import socket
import threading
import time

import pytest
from django.conf import settings

from deliverability.models import InboundMessage
from deliverability.retention import raw_quota_enforce
from deliverability.signals import raw_quota_reached
from tests.deliverability.hostile_support import dsn, listener_process, send, wire
from tests.deliverability.intake_support import make_delivery, return_path
from tests.deliverability.test_hostile_reports import run_pipe
from tests.helpers import wait_until

MB = 1024 * 1024


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident set (VmHWM, Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def big_report(delivery, size: int, nonce: int) -> bytes:
    """A DSN returning a large message: what a bounce of a big mail looks like."""
    body = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
    head = dsn([delivery.address], nonce=f"big{nonce}").replace(b"--B--\n", b"")
    return wire(head) + b"--B\r\nContent-Type: application/octet-stream\r\n\r\n" + body + \
        b"\r\n--B--\r\n"


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_twenty_parallel_9mb_messages_keep_the_listener_small_and_responsive(
        transactional_db, redis_client, tmp_path):
    delivery = make_delivery("reader@example.org")
    rcpt = return_path(delivery)
    messages = [big_report(delivery, 9 * MB, n) for n in range(20)]
    # As in production: DEBUG off (with it, Django formats every statement, a stored
    # message's bytes included, which costs several times the message per insert).
    env = {"BOUNCE_LISTENER_PEER_CONNECTIONS": "40", "BOUNCE_LISTENER_PEER_RATE_PER_MIN": "200",
           "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": settings.SECRET_KEY}
    with listener_process(tmp_path, **env) as (port, process):
        before = peak_rss_mb(process.pid)
        answers: list = []

        def push(raw: bytes) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as smtp:
                answers.append(smtp.sendmail("", [rcpt], raw))

        threads = [threading.Thread(target=push, args=(m,)) for m in messages]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # the large ones are being read and stored
        started = time.monotonic()
        send(port, rcpt, dsn([delivery.address], nonce="small"))
        small_took = time.monotonic() - started
        for thread in threads:
            thread.join(600)
        peak = peak_rss_mb(process.pid)

    assert len(answers) == 20 and InboundMessage.objects.count() == 21
    print(f"listener peak RSS {peak:.0f} MB (start {before:.0f} MB); "
          f"small bounce {small_took:.2f} s")
    assert peak < 300, f"listener peak RSS {peak:.0f} MB (started at {before:.0f} MB)"
    assert small_took < 10, f"a small bounce waited {small_took:.1f} s"


def test_a_message_over_the_limit_is_refused_while_read_and_nothing_is_stored(
        transactional_db, redis_client, tmp_path):
    delivery = make_delivery("reader@example.org")
    big = big_report(delivery, 300_000, 1)
    with listener_process(tmp_path, BOUNCE_MAX_BYTES="200000") as (port, _process):
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            send(port, return_path(delivery), big)  # smtplib declares SIZE= (RFC 1870)
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
            smtp.ehlo()
            smtp.mail("")  # no SIZE declared: only reading the data can tell
            smtp.rcpt(return_path(delivery))
            undeclared = smtp.data(big)
            assert smtp.noop()[0] == 250  # the session goes on
        send(port, return_path(delivery), dsn([delivery.address]))
    assert declared.value.smtp_code == 552 and undeclared[0] == 552
    assert InboundMessage.objects.count() == 1


def test_the_pipe_refuses_a_message_over_the_limit_with_a_reason(transactional_db):
    delivery = make_delivery("reader@example.org")
    import subprocess
    import sys

    from tests.helpers import ROOT, subprocess_env

    done = subprocess.run([sys.executable, "manage.py", "ingest_bounce"],
                          input=big_report(delivery, 300_000, 2), cwd=ROOT,
                          env=subprocess_env(BOUNCE_MAX_BYTES="200000"), capture_output=True,
                          timeout=60)

    assert done.returncode == 65 and b"larger than 200000 bytes" in done.stderr
    assert not InboundMessage.objects.exists()
    assert run_pipe(dsn([delivery.address])).returncode == 0


def test_connections_past_the_per_peer_cap_get_421(transactional_db, redis_client, tmp_path):
    env = {"BOUNCE_LISTENER_PEER_CONNECTIONS": "2"}
    with listener_process(tmp_path, **env) as (port, _process):
        held = [smtplib.SMTP("127.0.0.1", port, timeout=10) for _ in range(2)]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as extra:
                assert extra.recv(100).startswith(b"421 ")
        finally:
            for session in held:
                session.quit()
        # Freed: a new connection is served again.
        wait_until(lambda: smtplib.SMTP("127.0.0.1", port, timeout=10).noop()[0] == 250)


def test_the_raw_quota_prunes_the_oldest_first_and_alerts(db, monkeypatch):
    from deliverability.intake import ingest

    monkeypatch.setenv("OPERATOR_EMAILS", "ops@example.org")
    seen = []
    raw_quota_reached.connect(lambda sender, **kw: seen.append(kw), weak=False,
                              dispatch_uid="test-quota")
    try:
        for n in range(4):
            ingest(os.urandom(200_000) + str(n).encode(), source="pipe")
        assert raw_quota_enforce(quota=500_000) >= 2
    finally:
        raw_quota_reached.disconnect(dispatch_uid="test-quota")
    kept = list(InboundMessage.objects.order_by("id").values_list("stored_bytes", flat=True))
    assert kept[0] == 0 and kept[-1] > 0 and sum(kept) <= 500_000
    assert seen and seen[0]["quota_bytes"] == 500_000
    assert InboundMessage.objects.count() == 4  # rows and their events stay
    from sending.models import TransactionalEmail

    assert TransactionalEmail.objects.filter(purpose="alert", to="ops@example.org",
                                             subject__contains="quota").exists()
