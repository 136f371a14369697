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


def test_the_ledger_pages_show_names(admin_client):
    from deliverability.models import BreakerTransition
    from sending.models import Delivery, Mailing

    BreakerTransition.objects.create(provider="microsoft_consumer", pool="bulk",
                                     from_state="ok", to_state="paused")
    mailing = Mailing.objects.create(from_email="n@x.example", subject_template="s",
                                     text_template="t")
    Delivery.objects.create(mailing=mailing, address="a@outlook.com",
                            provider="microsoft_consumer")
    for url in ("/admin/deliverability/breakertransition/", "/admin/sending/delivery/"):
        page = admin_client.get(url).content.decode()
        assert '<td class="field-provider_column">Microsoft Outlook.com / Hotmail</td>' in page
