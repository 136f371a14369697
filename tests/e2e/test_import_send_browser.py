"""Headless Chromium, as an editor: import a Windows-1252 CSV whose "Vorname" column is
mapped to the name, watch its live detail page, then "Send now" through the confirmation.

Real parts: the live server and admin, a Celery worker on the maintenance queue (the
import, and the start task "Send now" enqueues; no beat runs), Debian's Chromium.
Screenshots at 1440 and 390 px land in $ARTIFACTS_DIR/import-send-browser.
"""

from __future__ import annotations

import pytest

from newsletter.models import Campaign, MailingList, Subscriber, SubscriberImport
from tests.e2e.browser import artifacts_folder, browser_page
from tests.helpers import wait_until
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
CSV = ("E-Mail;Vorname;Stadt;Notiz\nann@example.org;Jürgen;Köln;\u201eGruß\u201c 5 \u20ac\n"
       "bea@example.org;Zoë;Berlin;\n")  # the quotes and the euro sign are Windows-1252 only


def test_import_with_mapping_then_send_now(live_server, settings, tmp_path, monkeypatch,
                                           celery_worker_factory, smtp_sink,
                                           sending_env):  # noqa: F811
    from django.contrib.auth import get_user_model
    from django.db import connections

    from config.roles import EDITOR, roles_ensure
    from newsletter.campaigns import layout_default

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    news = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_name="Shop News", from_email="news@shop.example")
    layout = layout_default()
    layout.postal_address = "Shop GmbH, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    editor = get_user_model().objects.create_user("edna", "edna@shop.example", "s3cret-pw",
                                                  is_staff=True)
    editor.groups.add(roles_ensure()[EDITOR])
    celery_worker_factory("maintenance", name="ops", SITE_URL=live_server.url,
                          DATA_DIR=str(tmp_path))  # MEDIA_ROOT is DATA_DIR/media
    upload = tmp_path / "kunden.csv"
    upload.write_bytes(CSV.encode("cp1252"))
    shots = artifacts_folder("import-send-browser")
    try:
        with browser_page(monkeypatch, timeout_ms=20_000,
                          viewport={"width": 1440, "height": 900}) as page:
            page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/"
                      "subscriberimport/add/")
            page.fill("#id_username", "edna")
            page.fill("#id_password", "s3cret-pw")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/subscriberimport/add/")
            page.select_option("#id_mailing_list", str(news.id))
            page.select_option("#id_mode", "confirmed")
            page.fill("#id_consent_statement", "Checkbox at checkout, 2024")
            page.set_input_files("#id_file", str(upload))
            page.get_by_role("button", name="Save", exact=True).click()
            page.wait_for_url("**/mapping/")
            assert page.locator("#encoding-used").inner_text() == "cp1252"
            assert "Jürgen" in page.locator("#import-preview").inner_text()
            assert page.locator("#role-1").input_value() == "name"  # Vorname
            page.locator("input[name=key]").nth(2).fill("city")
            page.select_option("#role-3", "ignore")
            page.screenshot(path=shots / "1-mapping-1440.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=shots / "1-mapping-390.png", full_page=True)
            page.set_viewport_size({"width": 1440, "height": 900})
            page.get_by_role("button", name="Start the import").click()
            page.wait_for_url("**/change/")
            page.locator("#import-outcome").filter(has_text="2 subscriptions created").wait_for(
                timeout=30_000)  # the page refreshes itself until the worker is done
            assert SubscriberImport.objects.get().state == "done"
            ann = Subscriber.objects.get(email="ann@example.org")
            assert ann.name == "Jürgen" and ann.attributes == {"city": "Köln"}
            page.screenshot(path=shots / "2-import-done-1440.png", full_page=True)

            campaign = Campaign.objects.create(
                name="Hello", subject="Hi {{ subscriber.name }}", layout=layout,
                body="Greetings to {{ subscriber.attributes.city }}!")
            campaign.lists.add(news)
            page.goto(f"{live_server.url}/admin/newsletter/campaign/{campaign.pk}/change/")
            page.locator("#send-now").click()
            page.wait_for_url("**/send-now/")
            assert page.locator("#send-now-count").inner_text() == "2 recipients"
            assert page.locator("#send-now-lists").inner_text() == "Shop News"
            assert "news@shop.example" in page.locator("#send-now-sender").inner_text()
            assert "DKIM" in page.locator("#send-now-warnings").inner_text()
            page.screenshot(path=shots / "3-send-now-1440.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=shots / "3-send-now-390.png", full_page=True)
            page.locator("#send-now-confirm").click()
            page.get_by_text("Sending started").wait_for()
            wait_until(lambda: Campaign.objects.get(pk=campaign.pk).state == "sending",
                       timeout=30)
            assert Campaign.objects.get(pk=campaign.pk).mailing.recipients == 2
    finally:
        connections.close_all()
