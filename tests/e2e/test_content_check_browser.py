"""Headless Chromium: the editor opens a short campaign with one image and sees the content
check in the checklist: the image warning and SpamAssassin's score (a real spamd, started by
tests/newsletter/test_content_check.py's fixture) with each rule hit listed.
Screenshot: $ARTIFACTS_DIR/content-check/checklist.png."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from newsletter import conf
from newsletter.campaign_roles import editor_group_ensure
from newsletter.campaigns import layout_default
from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from tests.e2e.browser import artifacts_folder, browser_page
from tests.newsletter.test_content_check import IMAGE, spamd  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_checklist_shows_the_image_warning_and_the_rules_spamassassin_hit(
        live_server, spamd, monkeypatch, redis_client):  # noqa: F811
    from django.db import connections

    monkeypatch.setattr(conf, "SPAMD_URL", spamd)
    layout = layout_default()
    layout.postal_address = "ACME Shop, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    shop = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_email="news@shop.example")
    ann = Subscriber.objects.create(email="ann@example.org", name="Ann")
    Subscription.objects.create(subscriber=ann, mailing_list=shop, status="confirmed")
    campaign = Campaign.objects.create(name="Spring", subject="Spring is here", layout=layout,
                                       body_format="html", body=f"<p>Spring!</p>{IMAGE}")
    campaign.lists.add(shop)
    user = get_user_model().objects.create_user("edna", "edna@shop.example", "s3cret-pw",
                                                is_staff=True)
    user.groups.add(editor_group_ensure())
    try:
        with browser_page(monkeypatch, timeout_ms=30_000,
                          viewport={"width": 1280, "height": 900}) as page:
            page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/campaign/"
                      f"{campaign.pk}/change/")
            page.fill("#id_username", "edna")
            page.fill("#id_password", "s3cret-pw")
            page.get_by_role("button", name="Log in").click()
            page.locator("#checklist").wait_for()
            warnings = page.locator("#checklist .pw-check-warning").all_inner_texts()
            assert any(w.startswith("Enough text for its images") for w in warnings)
            score = next(w for w in warnings if w.startswith("SpamAssassin"))
            assert "points; SpamAssassin marks mail as spam at 5.0" in score
            rules = page.locator("#checklist .pw-check-items li").all_inner_texts()
            assert any(r.startswith("HTML_IMAGE_ONLY_") and "little text" in r for r in rules)
            page.locator("#checklist").screenshot(
                path=str(artifacts_folder("content-check") / "checklist.png"))
    finally:
        connections.close_all()
