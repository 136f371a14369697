"""Provider keys become names in one place (deliverability.providers.provider_name)."""

from deliverability.breaker.rules import load
from deliverability.providers import provider_name


def test_every_shipped_provider_has_a_name_of_its_own():
    for key, provider in load().providers.items():
        assert provider_name(key) == provider.name and provider.name != key


def test_names_of_keys_that_are_not_providers():
    assert provider_name("microsoft_consumer") == "Microsoft Outlook.com / Hotmail"
    assert provider_name("*") == "every provider"
    assert provider_name("") == provider_name("unknown") == "unknown provider"
    assert provider_name("mx:mx1.example.net,mx2.example.net") == (
        "mail servers mx1.example.net, mx2.example.net")
    assert provider_name("example.org") == "example.org"
