"""Admin pages for the header analyser and the pre-flight checks."""

import pytest
from django.urls import reverse

from tests.deliverability.test_received import SEED


@pytest.mark.django_db
def test_pasted_headers_are_explained(admin_client):
    response = admin_client.post(reverse("explain-headers"), {"headers": f"Received: {SEED}\n"})
    page = response.content.decode()
    assert "mail.com" in page and "none recorded" in page and "94.130.34.42" in page
    assert "Verdict: no hop is one of our relays" in page


@pytest.mark.django_db
def test_preflight_page_runs_the_checks(admin_client, monkeypatch):
    from tests.dns_server import LocalDNS

    with LocalDNS([]) as server:
        monkeypatch.setattr("deliverability.conf.DNS_SERVERS", [server.address])
        page = admin_client.post(reverse("preflight")).content.decode()
    assert "dmarc" in page and "FAIL" in page  # the default domain has no DMARC record


def test_tool_pages_need_login(client):
    assert client.get(reverse("preflight")).status_code == 302
    assert client.get(reverse("explain-headers")).status_code == 302
