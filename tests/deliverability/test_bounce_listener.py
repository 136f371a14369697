"""The bounce listener as its own process (manage.py bounce_listener), fed by smtplib."""

from __future__ import annotations

import smtplib
import subprocess
import sys

import pytest

from config.redis_server import free_port, wait_for_port
from deliverability.models import InboundMessage, Suppression
from sending.models import Delivery
from tests.deliverability.intake_support import (
    BOUNCE_DOMAIN,
    bounce_for,
    make_delivery,
    return_path,
)
from tests.helpers import ROOT, subprocess_env, wait_until


@pytest.fixture
def listener(transactional_db, tmp_path):
    port = free_port()
    log = open(tmp_path / "listener.log", "wb")  # closed in finally
    process = subprocess.Popen(
        [sys.executable, "manage.py", "bounce_listener", "--port", str(port),
         "--domain", BOUNCE_DOMAIN],
        cwd=ROOT, env=subprocess_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", port, 30)
        yield port
    finally:
        process.terminate()
        process.wait(15)
        log.close()


def wire(raw: bytes) -> bytes:
    """The message as an MTA sends it: CRLF line ends (smtplib leaves bytes alone)."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def send(port: int, rcpt: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("", [rcpt], wire(raw))


def test_verp_bounce_by_smtp_marks_the_delivery_bounced_and_suppresses(listener):
    delivery = make_delivery("nobody@example.org")
    raw = bounce_for("rfc3464_user_unknown", delivery)

    send(listener, return_path(delivery), raw)

    stored = InboundMessage.objects.get()
    assert stored.source == "smtp" and stored.raw == wire(raw)
    assert return_path(delivery) in stored.envelope_recipients
    assert Suppression.objects.get(address="nobody@example.org").reason == "hard_bounce"
    wait_until(lambda: Delivery.objects.get(id=delivery.id).state == Delivery.State.BOUNCED)

    send(listener, return_path(delivery), raw)  # an MTA's retry of the same message
    assert InboundMessage.objects.count() == 1 and Suppression.objects.count() == 1


def test_block_by_smtp_suppresses_nobody(listener):
    delivery = make_delivery("reader@hotmail.com", provider="microsoft_consumer")

    send(listener, return_path(delivery), bounce_for("microsoft_s3150_block", delivery))

    event = InboundMessage.objects.get().events.get()
    assert (event.kind, event.action) == ("block", "breaker")
    assert not Suppression.objects.exists()


@pytest.mark.parametrize("rcpt", [
    "postmaster@" + BOUNCE_DOMAIN,                        # not VERP
    "bounces+1-aaaaaaaaaa@" + BOUNCE_DOMAIN,              # forged token
    "bounces+{token}@elsewhere.example.net",              # right token, wrong domain
])
def test_recipients_that_do_not_decode_are_refused(listener, rcpt):
    delivery = make_delivery("nobody@example.org")
    rcpt = rcpt.format(token=return_path(delivery).split("+")[1].split("@")[0])

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(listener, rcpt, bounce_for("rfc3464_user_unknown", delivery))

    assert refused.value.recipients[rcpt][0] == 550
    assert not InboundMessage.objects.exists()
