"""Every admin page at a phone's width (390 px) in headless Chromium: nothing wider than it.

A superuser with a row of every model (the permission walk's ``objects``, with
long values) opens every changelist, add, change, history and delete page, app
index and custom admin page; each may scroll down but never sideways
(``scrollWidth <= 391``: wide tables scroll in their own box, fields and long
words stay inside, ``config/static/admin/css/postwarden.css``). Screenshots land
in $ARTIFACTS_DIR/phone-width (default <project>/artifacts).
"""

from __future__ import annotations

import json
import re

import pytest

from newsletter.campaign_models import Campaign
from newsletter.models import Subscriber
from tests.config.test_admin_permissions import NOWHERE, concrete_urls, objects  # noqa: F401
from tests.e2e.browser import artifacts_folder, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH = 390
OBJECT_PAGE = re.compile(r"<object_id>/$")  # "view on site"-style redirects to change/
# Not pages to look at: the mail's own HTML in the preview frame, leaving, the POST-only
# actions, downloads (JSON endpoints are left out by their content type).
NOT_PAGES = {"logout/", "jsi18n/", "newsletter/campaign/<pk>/preview/frame/",
             "breakers/action/",
             "newsletter/campaign/<pk>/action/",
             "newsletter/subscriberimport/<import_id>/report/",  # a CSV download
             "otp_totp/totpdevice/<pk>/qrcode/"}  # an image


def phone_pages(urls: dict[str, str]) -> dict[str, str]:
    """Changelists, add, change, history and delete pages, app indexes, custom pages."""
    return {key: url for key, url in urls.items()
            if key not in NOWHERE | NOT_PAGES and not OBJECT_PAGE.search(key)}


def long_values(rows) -> None:
    """What real rows hold: long subjects, long addresses, URLs without a space."""
    url = "https://shop.example/offers/spring-2031/" + "very-long-path-segment-" * 6
    Campaign.objects.filter(pk=rows[Campaign].pk).update(
        subject="Our spring collection is here, with twenty per cent off everything "
                "until Sunday {{ subscriber.name }}", tags="spring, offers, newsletter",
        body=f"# Spring\n\nSee [the offers]({url}) or {url}.")
    Subscriber.objects.filter(pk=rows[Subscriber].pk).update(
        email="a.very.long.address.of.someone@subdomain.of.a.long-company-name.example",
        attributes={"city": "Berlin", "interests": "shoes, bags, " * 8})


def test_every_admin_page_fits_a_phone(live_server, monkeypatch, objects):  # noqa: F811
    long_values(objects["rows"])
    pages = phone_pages(concrete_urls(objects))
    assert len(pages) > 150 and "sending/relaypool/add/" in pages and "sink/" in pages
    folder = artifacts_folder("phone-width")
    for old in [*folder.glob("*.png"), *folder.glob("*.json")]:
        old.unlink()  # a page no longer too wide leaves no stale picture
    too_wide, opened = {}, 0
    with browser_page(monkeypatch, viewport={"width": WIDTH, "height": 844},
                      device_scale_factor=1, is_mobile=True, has_touch=True) as page:
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", "root")
        page.fill("#id_password", "pw-root-123456")
        page.click("input[type=submit]")
        page.wait_for_url(f"{live_server.url}/admin/")
        for key, url in sorted(pages.items()):
            response = page.goto(live_server.url + url)
            if response.status == 403 and re.search(r"(add|change|delete)/$", key):
                continue  # turned off for everyone (the consent log is read-only, ...)
            if not response.headers.get("content-type", "").startswith("text/html"):
                continue  # an endpoint for scripts (JSON), not a page
            assert response.status < 400, (key, response.status)
            opened += 1
            width = page.evaluate("document.documentElement.scrollWidth")
            name = re.sub(r"[^\w]+", "-", key).strip("-") or "home"
            if width > WIDTH + 1:
                too_wide[key] = width
                page.screenshot(path=str(folder / f"too-wide-{name}.png"), full_page=True)
            else:
                page.screenshot(path=str(folder / f"{name}.png"))
    (folder / "summary.json").write_text(json.dumps(
        {"width": WIDTH, "pages_listed": len(pages), "pages_opened": opened,
         "too_wide": too_wide}, indent=1))
    assert opened > 150
    assert too_wide == {}
