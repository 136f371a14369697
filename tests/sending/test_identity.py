"""Our identity (relays, DKIM keys, domains) feeds the pre-flight checks and the header analyser."""

import io
import json

import pytest
from django.core.management import call_command

from deliverability.identity import current_identity
from deliverability.received import explain
from sending import conf
from sending.dkim import generate_rsa_key, keys_for, sign
from sending.models import Relay, RelayPool
from tests.dns_server import LocalDNS


@pytest.fixture
def keyed(tmp_path, monkeypatch, settings):
    monkeypatch.setenv("DKIM_KEY_DIR", str(tmp_path / "dkim"))
    monkeypatch.setenv("BOUNCE_DOMAIN", "bounce.good.example")
    conf.reload()
    settings.DEFAULT_FROM_EMAIL = "news@good.example"
    record = generate_rsa_key(tmp_path / "dkim", "good.example", "pw1")
    pool = RelayPool.objects.create(name="bulk-eu", purpose="bulk")
    Relay.objects.create(pool=pool, name="r1", host="127.0.0.1", port=2525,
                         helo_name="mail.good.example", source_address="192.0.2.25")
    yield record
    monkeypatch.delenv("DKIM_KEY_DIR")
    conf.reload()


def _txt(name, text):
    return f"{name} 60 IN TXT " + " ".join(f'"{text[i:i + 200]}"' for i in range(0, len(text), 200))


@pytest.mark.django_db
def test_check_reputation_reads_our_relays_and_keys(keyed, monkeypatch):
    zone = [
        "25.2.0.192.in-addr.arpa. 60 IN PTR mail.good.example.",
        "mail.good.example. 60 IN A 192.0.2.25",
        _txt("bounce.good.example.", "v=spf1 ip4:192.0.2.25 -all"),
        _txt("pw1._domainkey.good.example.", keyed),
        _txt("_dmarc.good.example.", "v=DMARC1; p=none"),
    ]
    with LocalDNS(zone) as server:
        monkeypatch.setattr("deliverability.conf.DNS_SERVERS", [server.address])
        out = io.StringIO()
        call_command("check_reputation", "--json", "--no-open-relay", stdout=out)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    checks = {(r["check"], r["status"]) for r in results}
    assert {("fcrdns", "ok"), ("spf", "ok"), ("dkim", "ok"), ("dmarc", "ok")} <= checks
    assert all(r["status"] in ("ok", "unknown") for r in results), results


@pytest.mark.django_db
def test_a_message_we_signed_is_recognised_as_ours(keyed):
    identity = current_identity()
    assert identity.relay_ips == {"192.0.2.25"} and "good.example" in identity.dkim_domains
    message = (b"Received: from mail.good.example (mail.good.example [192.0.2.25]) by "
               b"mx.example.net with ESMTP id 1; Tue, 13 Feb 2018 03:54:09 +0100\r\n"
               b"From: News <news@good.example>\r\nTo: a@example.net\r\nSubject: hi\r\n"
               b"Message-ID: <pw.1.2@good.example>\r\n\r\nHello.\r\n")
    signed = sign(message, keys_for("good.example", conf.get().dkim_key_dir, ("pw1",)))
    verdict = explain(signed, identity).ours
    assert verdict["dkim_valid"] and verdict["relay_ip"] and verdict["sent_through_us"]
    tampered = signed.replace(b"Hello.", b"Buy now.")
    assert explain(tampered, identity).ours["dkim_valid"] is False
