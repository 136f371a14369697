"""First run: ensure_admin (make run) puts the sender's postal address into the shipped
layout, from SENDER_POSTAL_ADDRESS or asked, so the first campaign passes the checklist."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from newsletter.campaign_models import Campaign, Layout
from newsletter.campaigns import campaign_checklist, layout_default

pytestmark = pytest.mark.django_db
LAYOUT_CHECK = "Layout “Default (responsive)” has the unsubscribe link and postal address"


@pytest.fixture(autouse=True)
def quiet_admin(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("SENDER_POSTAL_ADDRESS", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal


def _layout_check(mailing_list) -> bool:
    campaign = Campaign.objects.create(name="First", subject="Hi", body="Hello",
                                       layout=layout_default())
    campaign.lists.add(mailing_list)
    return next(c for c in campaign_checklist(campaign) if c.name == LAYOUT_CHECK).ok


def test_the_env_var_fills_the_shipped_layout_and_the_first_campaign_passes(
        mailing_list, monkeypatch, capsys):
    assert not _layout_check(mailing_list)  # as shipped: blocked
    monkeypatch.setenv("SENDER_POSTAL_ADDRESS", "Shop GmbH\\nHauptstrasse 1\\n10115 Berlin")
    call_command("ensure_admin")
    assert "Postal address set" in capsys.readouterr().out
    assert layout_default().postal_address == "Shop GmbH\nHauptstrasse 1\n10115 Berlin"
    assert _layout_check(mailing_list)


def test_an_address_set_in_the_admin_is_kept(monkeypatch):
    layout = layout_default()
    layout.postal_address = "Kept 1, Bern"
    layout.save()
    monkeypatch.setenv("SENDER_POSTAL_ADDRESS", "Other 2, Basel")
    call_command("ensure_admin")
    assert Layout.objects.get(pk=layout.pk).postal_address == "Kept 1, Bern"


def test_asked_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr("sys.stdin", Terminal("ACME, 1 Main St, Springfield\n"))
    call_command("ensure_admin")
    assert layout_default().postal_address == "ACME, 1 Main St, Springfield"


def test_without_an_address_it_says_where_to_fill_it_in(capsys):
    call_command("ensure_admin")
    out = capsys.readouterr().out
    layout = layout_default()
    assert layout.postal_address == ""
    assert "SENDER_POSTAL_ADDRESS" in out and f"/admin/newsletter/layout/{layout.pk}/change/" in out


@pytest.mark.parametrize("raw", ["Shop\x07GmbH", "{{ subscriber.email }}", "x" * 501])
def test_a_bad_address_is_refused_and_nothing_changes(monkeypatch, capsys, raw):
    monkeypatch.setenv("SENDER_POSTAL_ADDRESS", raw)
    call_command("ensure_admin")
    assert "Postal address not set" in capsys.readouterr().err
    assert layout_default().postal_address == ""
