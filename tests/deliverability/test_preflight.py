"""Pre-flight checks against a real local DNS server loaded with good and broken records,
and the open-relay check against real aiosmtpd relays configured both ways."""

import base64

import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from config.redis_server import free_port
from deliverability import preflight
from deliverability.preflight import FAIL, OK, UNKNOWN, DomainTarget, RelayTarget
from deliverability.resolver import DnsResolver
from tests.dns_server import LocalDNS


def _public_b64(bits: int = 2048) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    der = key.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


OUR_KEY = _public_b64()
OTHER_KEY = _public_b64()


def _txt(name: str, text: str) -> str:
    chunks = " ".join(f'"{text[i:i + 200]}"' for i in range(0, len(text), 200))
    return f"{name} 60 IN TXT {chunks}"


ZONE = [
    # good relay: 192.0.2.25 <-> mail.good.example
    "25.2.0.192.in-addr.arpa. 60 IN PTR mail.good.example.",
    "mail.good.example. 60 IN A 192.0.2.25",
    # PTR that does not resolve back
    "26.2.0.192.in-addr.arpa. 60 IN PTR mail.elsewhere.example.",
    "mail.elsewhere.example. 60 IN A 198.51.100.1",
    # 192.0.2.27 has no PTR at all
    # good domain
    _txt("good.example.", "v=spf1 ip4:192.0.2.0/28 include:_spf.good.example -all"),
    _txt("_spf.good.example.", "v=spf1 ip4:192.0.2.25 -all"),
    _txt("pw1._domainkey.good.example.", f"v=DKIM1; k=rsa; p={OUR_KEY}"),
    _txt("_dmarc.good.example.", "v=DMARC1; p=quarantine; rua=mailto:dmarc@good.example"),
    # broken domain: SPF without our IP, someone else's DKIM key, no DMARC
    _txt("broken.example.", "v=spf1 ip4:198.51.100.0/24 ~all"),
    _txt("pw1._domainkey.broken.example.", f"v=DKIM1; k=rsa; p={OTHER_KEY}"),
    # eleven lookups: a chain of includes
    _txt("deep.example.", "v=spf1 include:l1.deep.example -all"),
    *[_txt(f"l{i}.deep.example.", f"v=spf1 include:l{i + 1}.deep.example -all")
      for i in range(1, 11)],
    _txt("l11.deep.example.", "v=spf1 ip4:192.0.2.25 -all"),
    # blocklists: 192.0.2.99 listed on ZEN; 192.0.2.98 answered with the resolver-refused code
    "99.2.0.192.zen.spamhaus.org. 60 IN A 127.0.0.2",
    "98.2.0.192.zen.spamhaus.org. 60 IN A 127.255.255.254",
    "listed.example.dbl.spamhaus.org. 60 IN A 127.0.1.2",
]


@pytest.fixture(scope="module")
def resolver():
    with LocalDNS(ZONE) as server:
        yield DnsResolver(servers=[server.address], timeout=2)


def test_fcrdns(resolver):
    good = preflight.check_fcrdns(resolver, RelayTarget("192.0.2.25", helo="mail.good.example"))
    assert good.status == OK
    assert preflight.check_fcrdns(resolver, RelayTarget("192.0.2.27")).status == FAIL  # no PTR
    mismatch = preflight.check_fcrdns(resolver, RelayTarget("192.0.2.26"))
    assert mismatch.status == FAIL and "does not resolve back" in mismatch.detail
    helo = preflight.check_fcrdns(resolver, RelayTarget("192.0.2.25", helo="relay.other.example"))
    assert helo.status == FAIL and "HELO" in helo.detail


def test_spf(resolver):
    assert [r.status for r in preflight.check_spf(resolver, "good.example", ["192.0.2.25"])] == [OK]
    missing = preflight.check_spf(resolver, "broken.example", ["192.0.2.25"])[0]
    assert missing.status == FAIL and "softfail" in missing.detail
    deep = preflight.check_spf(resolver, "deep.example", ["192.0.2.25"])[0]
    assert deep.status == FAIL and "more than 10 DNS lookups" in deep.detail
    assert preflight.check_spf(resolver, "nospf.example", ["192.0.2.25"])[0].status == FAIL


def test_dkim(resolver):
    assert preflight.check_dkim(resolver, "good.example", "pw1", OUR_KEY).status == OK
    wrong = preflight.check_dkim(resolver, "broken.example", "pw1", OUR_KEY)
    assert wrong.status == FAIL and "not the one we sign with" in wrong.detail
    assert preflight.check_dkim(resolver, "good.example", "nosuch", OUR_KEY).status == FAIL


def test_dkim_short_keys_fail():
    class Fixed:
        def txt(self, name):
            return [f"v=DKIM1; k=rsa; p={SHORT}"]

    # A 512-bit RSA public key (DER, base64), as old setups published.
    SHORT = ("MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAMJLsvMgPPnT1AN+L4g7hYFVn7tZJvmZ"
             "3Z0h9xkqv5Tzqj5iF3wJ3C9g0hK2t1fOGSOzmW6vG2C1q1lIhV9Q3cUCAwEAAQ==")
    result = preflight.check_dkim(Fixed(), "old.example", "s1", SHORT)
    assert result.status == FAIL and "bits" in result.detail


def test_dmarc(resolver):
    good = preflight.check_dmarc(resolver, "good.example", dkim_domain="good.example")
    assert good.status == OK and "p=quarantine" in good.detail
    assert preflight.check_dmarc(resolver, "broken.example").status == FAIL
    unaligned = preflight.check_dmarc(resolver, "good.example", dkim_domain="esp.example")
    assert unaligned.status == FAIL and "aligns" in unaligned.detail
    assert preflight.organisational_domain("news.example.co.uk") == "example.co.uk"


def test_blocklists(resolver):
    assert preflight.check_ip_blocklists(resolver, "192.0.2.25")[0].status == OK
    listed = preflight.check_ip_blocklists(resolver, "192.0.2.99")[0]
    assert listed.status == FAIL and "127.0.0.2" in listed.detail
    refused = preflight.check_ip_blocklists(resolver, "192.0.2.98")[0]
    assert refused.status == UNKNOWN and "not a listing" in refused.detail
    assert preflight.check_domain_blocklists(resolver, "listed.example")[0].status == FAIL
    assert preflight.check_domain_blocklists(resolver, "good.example")[0].status == OK


class _Relay:
    """An aiosmtpd relay that accepts only its own domain without authentication, or anything."""

    def __init__(self, open_relay: bool):
        self.open_relay = open_relay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.open_relay and not address.endswith("@ours.example"):
            return "554 5.7.1 Relay access denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 OK"


@pytest.mark.parametrize(("open_relay", "expected"), [(False, OK), (True, FAIL)])
def test_open_relay(open_relay, expected):
    port = free_port()
    controller = Controller(_Relay(open_relay), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = preflight.check_open_relay("127.0.0.1", port)
    finally:
        controller.stop()
    assert result.status == expected, result.detail


def test_run_checks_covers_every_target(resolver):
    results = preflight.run_checks(
        resolver, relays=[RelayTarget("192.0.2.25", helo="mail.good.example")],
        domains=[DomainTarget("good.example", dkim={"pw1": OUR_KEY})],
        from_domains=["good.example"], open_relay=False,
    )
    assert {r.check for r in results} == {"fcrdns", "blocklist", "spf", "dkim", "dmarc"}
    assert all(r.status == OK for r in results), [r for r in results if r.status != OK]
