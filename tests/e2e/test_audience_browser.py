"""Headless Chromium: the audience builder's rows and its live count, before saving."""

from __future__ import annotations

import pytest

from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from tests.e2e.browser import artifacts_folder, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_rules_update_the_count_live_and_are_saved(live_server, monkeypatch):
    from django.contrib.auth import get_user_model
    from django.db import connections

    from config.roles import AUTHOR, roles_ensure
    from newsletter.campaigns import layout_default

    news = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_email="news@shop.example")
    for email, city in (("ann@example.org", "Berlin"), ("bob@example.org", "Hamburg"),
                        ("cem@example.org", "berlin-Mitte"), ("dan@example.org", "")):
        subscriber = Subscriber.objects.create(email=email, attributes={"City": city})
        Subscription.objects.create(subscriber=subscriber, mailing_list=news,
                                    status="confirmed")
    layout_default()
    author = get_user_model().objects.create_user("andy", "andy@shop.example", "s3cret-pw",
                                                  is_staff=True)
    author.groups.add(roles_ensure()[AUTHOR])
    shots = artifacts_folder("audience-browser")
    try:
        with browser_page(monkeypatch, viewport={"width": 1280, "height": 900}) as page:
            page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/campaign/add/")
            page.fill("#id_username", "andy")
            page.fill("#id_password", "s3cret-pw")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/admin/newsletter/campaign/add/")
            count = page.locator(".pw-audience-count")
            page.get_by_label("Shop News").first.check()
            page.wait_for_function("document.querySelector('.pw-audience-count')"
                                   ".textContent.startsWith('4 recipients')")
            page.get_by_role("button", name="Add a rule").click()
            page.get_by_label("Attribute", exact=True).fill("city")
            page.get_by_label("Operator").select_option("contains")
            page.get_by_label("Value", exact=True).fill("berl")
            page.wait_for_function("document.querySelector('.pw-audience-count')"
                                   ".textContent.startsWith('2 recipients')")
            options = page.locator("#id_segment_attributes-keys option")
            assert options.evaluate_all("o => o.map(x => x.value)") == ["City"]
            page.get_by_label("Operator").select_option("is_set")
            page.wait_for_function("document.querySelector('.pw-audience-count')"
                                   ".textContent.startsWith('3 recipients')")
            assert not page.get_by_label("Value", exact=True).is_visible()
            page.get_by_label("Operator").select_option("not_equals")
            page.get_by_label("Value", exact=True).fill("BERLIN")
            page.wait_for_function("document.querySelector('.pw-audience-count')"
                                   ".textContent.startsWith('3 recipients')")
            assert "recipients" in count.inner_text()
            page.screenshot(path=shots / "audience-builder.png", full_page=True)
            page.fill("#id_name", "Hamburg only")
            page.fill("#id_subject", "Hi")
            page.locator(".EasyMDEContainer .CodeMirror").click()  # the body's editor
            page.keyboard.type("Hello")
            page.get_by_role("button", name="Save and continue editing").click()
            page.locator("#checklist").wait_for()
        stored = Campaign.objects.get(name="Hamburg only").segment_attributes
        assert stored == {"match": "all", "rules": [{"attribute": "city", "op": "not_equals",
                                                      "value": "BERLIN",
                                                      "case_sensitive": False}]}
    finally:
        connections.close_all()
