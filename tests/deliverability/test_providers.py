"""Provider lookup by MX rollup, against a real local DNS server."""

import pytest

from deliverability import providers
from deliverability.resolver import DnsResolver
from tests.dns_server import LocalDNS

ZONE = [
    # a company domain hosted at Google Workspace (a vanity domain)
    "vanity.example. 60 IN MX 1 aspmx.l.google.com.",
    "vanity.example. 60 IN MX 5 alt1.aspmx.l.google.com.",
    # Exchange Online, with an upper-case answer
    "company.example. 60 IN MX 0 company-example.MAIL.protection.outlook.com.",
    # mixed: Google plus a backup of their own -> not Google
    "mixed.example. 60 IN MX 1 aspmx.l.google.com.",
    "mixed.example. 60 IN MX 20 backup.mixed.example.",
    # two domains on the same self-hosted servers share a provider key
    "shop-a.example. 60 IN MX 10 mx2.hoster.example.",
    "shop-a.example. 60 IN MX 5 mx1.hoster.example.",
    "shop-b.example. 60 IN MX 10 mx1.hoster.example.",
    "shop-b.example. 60 IN MX 20 mx2.hoster.example.",
    # self-hosted on two long host names: the rollup is longer than a provider column
    "long-a.example. 60 IN MX 10 mx1.a-long-hosting-company-name.example.",
    "long-a.example. 60 IN MX 20 mx2.a-long-hosting-company-name.example.",
    "long-b.example. 60 IN MX 10 mx2.a-long-hosting-company-name.example.",
    "long-b.example. 60 IN MX 20 mx1.a-long-hosting-company-name.example.",
    "long-c.example. 60 IN MX 10 mx1.a-long-hosting-company-name.example.",
    "long-c.example. 60 IN MX 20 mx3.a-long-hosting-company-name.example.",
]


@pytest.fixture
def resolver(redis_client):
    providers.forget()
    with LocalDNS(ZONE, fail={"gmail.com", "broken.example"}) as server:
        yield DnsResolver(servers=[server.address], timeout=2)
    providers.forget()


def test_vanity_domain_hosted_at_google(resolver):
    assert providers.provider_for_domain("vanity.example", resolver) == "google"


def test_trailing_dots_and_case_do_not_matter(resolver):
    assert providers.provider_for_domain("Company.Example.", resolver) == "microsoft_365"


def test_mixed_mx_sets_are_not_rolled_up(resolver):
    assert providers.provider_for_domain("mixed.example", resolver) == \
        "mx:aspmx.l.google.com,backup.mixed.example"


def test_domains_on_the_same_servers_share_a_key(resolver):
    assert providers.provider_for_domain("shop-a.example", resolver) == \
        providers.provider_for_domain("shop-b.example", resolver) == \
        "mx:mx1.hoster.example,mx2.hoster.example"


def test_a_failing_resolver_falls_back_to_the_domain_list(resolver):
    assert providers.provider_for_domain("gmail.com", resolver) == "google"
    assert providers.provider_for_domain("broken.example", resolver) == "broken.example"


def test_a_domain_without_mx_is_its_own_provider(resolver):
    assert providers.provider_for_domain("nomx.example", resolver) == "nomx.example"


def test_answers_are_shared_through_redis(resolver, redis_client):
    providers.provider_for_domain("vanity.example", resolver)
    assert redis_client.get("deliverability:provider:vanity.example") == b"google"
    providers.forget()

    class Unreachable:
        def mx(self, domain):
            raise AssertionError("should have come from the shared cache")

    assert providers.provider_for_domain("vanity.example", Unreachable()) == "google"


def test_without_dns_the_shipped_lists_decide(resolver):
    providers.forget()
    assert providers.provider_for_domain("hotmail.de", use_dns=False) == "microsoft_consumer"
    assert providers.provider_for_domain("GMX.net", use_dns=False) == "united_internet"
    assert providers.provider_for_domain("example.net", use_dns=False) == "example.net"


def test_many_domains_at_once(resolver):
    found = providers.providers_for_domains(
        ["vanity.example", "Company.example", "shop-a.example", "nomx.example"], resolver)
    assert found == {"vanity.example": "google", "company.example": "microsoft_365",
                     "shop-a.example": "mx:mx1.hoster.example,mx2.hoster.example",
                     "nomx.example": "nomx.example"}


def test_a_long_rollup_fits_the_provider_columns_and_stays_one_key(resolver):
    from sending.models import Delivery

    key = providers.provider_for_domain("long-a.example", resolver)
    assert len(key) <= Delivery._meta.get_field("provider").max_length == providers.KEY_MAX
    assert key.startswith("mx:mx1.a-long-hosting-company-name.example,")
    assert providers.provider_for_domain("long-b.example", resolver) == key  # same servers
    assert providers.provider_for_domain("long-c.example", resolver) != key  # others
    assert providers.provider_name(key).startswith(
        "mail servers mx1.a-long-hosting-company-name.example, mx2.")
    assert providers.provider_name(key).endswith("…")
    domain = "x" * 70 + ".example"
    assert len(providers.rollup(domain, [])) == providers.KEY_MAX
