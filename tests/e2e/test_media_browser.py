"""Headless Chromium: an author uploads images (the admin form and the toolbar's endpoint,
as a page script calls it) and sees them in the library and in a campaign's preview.

Real parts: the live server with DEBUG off serving /media/ itself, the admin's login and
CSRF, Debian's Chromium. Screenshots land in $ARTIFACTS_DIR/media-browser.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from newsletter.models import Campaign, MailingList, MediaAsset
from tests.e2e.browser import artifacts_folder, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UPLOAD_SCRIPT = """async ([bytes, campaign]) => {
  const token = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
  const form = new FormData();
  form.append('file', new File([new Uint8Array(bytes)], 'chart.webp', {type: 'image/webp'}));
  form.append('campaign', String(campaign));
  form.append('alt', 'Sales chart');
  const answer = await fetch('/admin/newsletter/mediaasset/upload/',
                             {method: 'POST', body: form, headers: {'X-CSRFToken': token}});
  return {status: answer.status, body: await answer.json()};
}"""


def _image(kind: str, size, color) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=kind)
    return out.getvalue()


def test_uploaded_images_show_in_the_library_and_in_the_preview(live_server, settings,
                                                                 monkeypatch, tmp_path):
    from django.contrib.auth import get_user_model
    from django.db import connections

    from config.roles import AUTHOR, roles_ensure
    from newsletter.campaigns import layout_default

    settings.DEBUG = False
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    layout = layout_default()
    layout.postal_address = "ACME, Hauptstrasse 1, Berlin"
    layout.save()
    news = MailingList.objects.create(name="News", slug="news", from_email="n@shop.example")
    campaign = Campaign.objects.create(name="Spring", subject="Hi", layout=layout)
    campaign.lists.add(news)
    author = get_user_model().objects.create_user("andy", "andy@shop.example", "s3cret-pw",
                                                  is_staff=True)
    author.groups.add(roles_ensure()[AUTHOR])
    shots = artifacts_folder("media-browser")
    try:
        with browser_page(monkeypatch, viewport={"width": 1280, "height": 900}) as page:
            page.goto(f"{live_server.url}/admin/login/?next=/admin/newsletter/mediaasset/add/")
            page.fill("#id_username", "andy")
            page.fill("#id_password", "s3cret-pw")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/admin/newsletter/mediaasset/add/")
            page.set_input_files("#id_upload", files=[{
                "name": "logo.png", "mimeType": "image/png",
                "buffer": _image("PNG", (120, 60), (20, 90, 200))}])
            page.get_by_role("button", name="Save", exact=True).click()
            page.wait_for_url("**/admin/newsletter/mediaasset/")
            thumbnail = page.locator("td img, th img").first
            thumbnail.wait_for()
            page.wait_for_function("[...document.querySelectorAll('#result_list img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)")
            page.screenshot(path=shots / "library.png", full_page=True)

            answer = page.evaluate(UPLOAD_SCRIPT, [list(_image("WEBP", (300, 100),
                                                               (200, 30, 30))), campaign.pk])
            assert answer["status"] == 201, answer
            assert answer["body"]["url"].startswith(f"{live_server.url}/media/")
            logo = MediaAsset.objects.get(label="logo.png")
            chart = MediaAsset.objects.get(label="chart.webp")
            assert chart.campaign_id == campaign.pk and chart.alt == "Sales chart"

            # One image by the toolbar's absolute Markdown, one by a relative address.
            campaign.body = (f"# Spring\n\n{answer['body']['markdown']}\n\n"
                             f"![Logo](/media/{logo.filename})")
            campaign.save()
            page.goto(f"{live_server.url}/admin/newsletter/campaign/{campaign.pk}/preview/")
            frame = page.frame_locator("#preview-desktop")
            frame.locator("h1").wait_for()
            images = frame.locator("img")
            images.nth(1).wait_for()
            widths = images.evaluate_all(
                "all => Promise.all(all.map(i => i.decode().then(() => i.naturalWidth)))")
            assert widths == [300, 120]
            sources = images.evaluate_all("all => all.map(i => i.getAttribute('src'))")
            assert sources == [answer["body"]["url"], f"{live_server.url}/media/{logo.filename}"]
            # Chromium paints iframes below the first screen only in a viewport that tall.
            page.set_viewport_size({"width": 1280, "height": page.evaluate(
                "document.documentElement.scrollHeight")})
            page.wait_for_timeout(300)
            page.screenshot(path=shots / "preview.png")
    finally:
        connections.close_all()
