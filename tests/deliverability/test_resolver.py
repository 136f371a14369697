"""The DNS resolver interface against a real local DNS server."""

import pytest

from deliverability.resolver import DnsFailure, DnsResolver
from tests.dns_server import LocalDNS

ZONE = [
    "example.org. 60 IN MX 20 backup.example.org.",
    "example.org. 60 IN MX 10 MX1.Example.org.",
    'example.org. 60 IN TXT "v=spf1 ip4:192.0.2.25 -all"',
    "mail.example.org. 60 IN A 192.0.2.25",
    "25.2.0.192.in-addr.arpa. 60 IN PTR mail.example.org.",
]


@pytest.fixture(scope="module")
def resolver():
    with LocalDNS(ZONE, fail={"broken.example"}) as server:
        yield DnsResolver(servers=[server.address], timeout=2)


def test_records_are_read_and_normalised(resolver):
    assert resolver.mx("example.org") == ["mx1.example.org", "backup.example.org"]
    assert resolver.txt("example.org") == ["v=spf1 ip4:192.0.2.25 -all"]
    assert resolver.a("mail.example.org") == ["192.0.2.25"]
    assert resolver.ptr("192.0.2.25") == ["mail.example.org"]


def test_missing_names_are_empty_but_failures_raise(resolver):
    assert resolver.mx("nowhere.example") == []
    assert resolver.a("example.org") == []
    with pytest.raises(DnsFailure):
        resolver.mx("broken.example")
