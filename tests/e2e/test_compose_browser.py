"""Headless Chromium: an author types into the toolbar editor and the preview follows, unsaved.

Real parts: the Django live server and its admin (login, CSRF), EasyMDE from
django-easymde's static files, newsletter/compose.js, the live-preview endpoint,
and Debian's Chromium driven by Playwright. The link and button buttons ask for
their text and address with the browser's prompt, answered here as a person would.
Screenshots land in $ARTIFACTS_DIR/compose-browser (default <project>/artifacts).
"""

from __future__ import annotations

import pytest

from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from tests.e2e.browser import artifacts_folder, browser_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def author(db):
    from django.contrib.auth import get_user_model

    from config.roles import AUTHOR, roles_ensure
    from newsletter.campaigns import layout_default

    layout = layout_default()
    layout.postal_address = "Shop GmbH, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    user = get_user_model().objects.create_user("aldo", "aldo@shop.example", "s3cret-pw",
                                                is_staff=True)
    user.groups.add(roles_ensure()[AUTHOR])
    return user


def _log_in(page, live_server, next_url: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_url}")
    page.fill("#id_username", "aldo")
    page.fill("#id_password", "s3cret-pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"**{next_url}")
    page.locator(".EasyMDEContainer .CodeMirror").wait_for()


def _frame_text(page) -> str:
    return page.frame_locator("#live-frame").locator("body").inner_text()


def test_typing_and_toolbar_buttons_update_the_preview_without_saving(live_server, monkeypatch,
                                                                      author):
    from django.db import connections

    artifacts = artifacts_folder("compose-browser")
    answers = []
    try:
        with browser_page(monkeypatch, timeout_ms=20_000, viewport=DESKTOP,
                          locale="en-GB") as page:
            page.on("dialog", lambda dialog: dialog.accept(answers.pop(0)))
            errors = []
            page.on("pageerror", lambda error: errors.append(error))
            _log_in(page, live_server, "/admin/newsletter/campaign/add/")
            toolbar = page.get_by_role("toolbar", name="Body formatting")
            for name in ("Bold", "Italic", "Heading", "Bulleted list", "Numbered list", "Link",
                         "Button (call to action)", "Personal field"):
                assert toolbar.get_by_role("button", name=name).count() == 1, name
            # An author may upload images and insert content blocks.
            assert toolbar.get_by_role("button", name="Image (upload)").count() == 1
            assert toolbar.get_by_role("button", name="Content block").count() == 1

            page.fill("#id_subject", "Spring for {{ subscriber.name }}")
            page.locator(".CodeMirror").click()
            page.keyboard.type("# Spring sale\n\nHello ")
            toolbar.get_by_role("button", name="Personal field").click()
            page.get_by_role("menuitem", name="{{ subscriber.name }}").click()
            page.keyboard.type(", read ")
            answers[:] = ["our news", "https://shop.example/news"]
            toolbar.get_by_role("button", name="Link", exact=True).click()
            page.keyboard.type(".")
            answers[:] = ["Shop now", "https://shop.example/spring"]
            toolbar.get_by_role("button", name="Button (call to action)").click()

            frame = page.frame_locator("#live-frame")
            frame.get_by_role("heading", name="Spring sale").wait_for()
            frame.get_by_text("Hello Sample Reader, read our news.").wait_for()
            link = frame.get_by_role("link", name="our news")
            assert link.get_attribute("href") == "https://shop.example/news"
            cta = frame.get_by_role("link", name="Shop now")
            assert cta.get_attribute("href") == "https://shop.example/spring"
            style = cta.get_attribute("style")
            assert "background:#1d4ed8" in style.replace(" ", "")
            assert "color:#ffffff" in style.replace(" ", "")  # the layout's link colour lost
            assert page.locator("#live-subject").inner_text() == "Spring for Sample Reader"
            body = page.locator("#id_body").input_value()
            assert "{{ subscriber.name }}" in body
            assert "[our news](https://shop.example/news)" in body
            assert Campaign.objects.count() == 0  # all of it unsaved

            # A foreign merge tag: the pane says what to write instead, naming the fields.
            page.keyboard.type("\n\nBye *|FNAME|*")
            error = page.locator("#live-error")
            page.wait_for_function("!document.getElementById('live-error').hidden")
            assert "Mailchimp merge tag" in error.inner_text()
            assert "Allowed fields:" in error.inner_text()
            for _ in "\n\nBye *|FNAME|*":
                page.keyboard.press("Backspace")
            page.wait_for_function("document.getElementById('live-error').hidden")

            # Phone width instead of a second frame.
            assert page.locator("#live-frame").get_attribute("width") == "760"
            page.get_by_role("button", name="Phone").click()
            assert page.locator("#live-frame").get_attribute("width") == "390"
            assert page.get_by_role("button", name="Phone").get_attribute(
                "aria-pressed") == "true"
            box = page.locator("#live-frame").bounding_box()
            assert 385 <= box["width"] <= 395
            page.screenshot(path=artifacts / "1-compose-live.png", full_page=True)
            page.get_by_role("button", name="Desktop").click()
            assert page.locator("#live-frame").get_attribute("width") == "760"

            # Side by side at desktop width: the preview starts right of the editor.
            editor_box = page.locator(".EasyMDEContainer").bounding_box()
            pane_box = page.locator("#live-preview").bounding_box()
            assert pane_box["x"] >= editor_box["x"] + editor_box["width"] - 1
            # The 760 px desktop mail is shown whole, scaled down to the narrower pane.
            box = page.locator("#live-frame").bounding_box()
            assert box["width"] <= pane_box["width"] < 760
            assert "scale(" in page.locator("#live-frame").evaluate("f => f.style.transform")
            assert Campaign.objects.count() == 0
            assert errors == []  # no script error on the page
    finally:
        connections.close_all()


def test_the_compose_page_fits_a_phone(live_server, monkeypatch, author):
    from django.db import connections

    artifacts = artifacts_folder("compose-browser")
    news = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_name="Shop News", from_email="news@shop.example")
    ann = Subscriber.objects.create(email="ann@example.org", name="Ann")
    sub = Subscription.objects.create(subscriber=ann, mailing_list=news, status="confirmed")
    campaign = Campaign.objects.create(name="Phone", subject="Hi {{ subscriber.name }}",
                                       body="# Hi {{ subscriber.name }}\n\nA long line " * 20)
    campaign.lists.add(news)
    try:
        with browser_page(monkeypatch, timeout_ms=20_000, viewport=PHONE, locale="en-GB",
                          is_mobile=True, has_touch=True) as page:
            _log_in(page, live_server, "/admin/newsletter/campaign/add/")
            for url in ("/admin/newsletter/campaign/add/",
                        f"/admin/newsletter/campaign/{campaign.pk}/change/"):
                page.goto(live_server.url + url)
                page.locator(".EasyMDEContainer .CodeMirror").wait_for()
                page.frame_locator("#live-frame").locator("h1, p").first.wait_for()
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= PHONE["width"], f"{url}: the page is {width} px wide"
                # Stacked: the preview comes below the editor.
                editor_box = page.locator(".EasyMDEContainer").bounding_box()
                pane_box = page.locator("#live-preview").bounding_box()
                assert pane_box["y"] >= editor_box["y"] + editor_box["height"] - 1
                frame_box = page.locator("#live-frame").bounding_box()
                assert frame_box["x"] >= 0 and frame_box["x"] + frame_box["width"] <= 390
            page.select_option("#live-preview-as", str(sub.id))
            page.frame_locator("#live-frame").get_by_role("heading", name="Hi Ann").first \
                .wait_for()
            page.locator(".pw-compose").screenshot(path=artifacts / "2-compose-phone.png")
    finally:
        connections.close_all()


def test_image_and_block_buttons_use_the_media_and_block_pages(live_server, monkeypatch,
                                                               settings, author, tmp_path):
    """The media library's upload and the content blocks' list, the real pages."""
    from django.db import connections

    from newsletter.media_models import MediaAsset
    from newsletter.models import ContentBlock
    from tests.helpers import png_bytes

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = live_server.url
    ContentBlock.objects.create(name="Shop hours", body_format="html",
                                body="<p>Open Monday to Saturday, 9 to 18.</p>")
    ContentBlock.objects.create(name="Signature", body_format="markdown",
                                body="Yours, **the shop team**")
    campaign = Campaign.objects.create(name="Media", subject="Hi", body="Start.\n")
    image = tmp_path / "spring.png"
    image.write_bytes(png_bytes())
    text = tmp_path / "notes.png"
    text.write_text("<html>not an image</html>")
    try:
        with browser_page(monkeypatch, timeout_ms=20_000, viewport=DESKTOP,
                          locale="en-GB") as page:
            url = f"/admin/newsletter/campaign/{campaign.pk}/change/"
            _log_in(page, live_server, url)
            toolbar = page.get_by_role("toolbar", name="Body formatting")
            page.locator(".CodeMirror").click()
            page.keyboard.press("Control+End")

            with page.expect_file_chooser() as chooser:
                toolbar.get_by_role("button", name="Image (upload)").click()
            chooser.value.set_files(str(image))
            page.get_by_text("Uploaded spring.png.").wait_for()
            frame = page.frame_locator("#live-frame")
            img = frame.get_by_role("img", name="spring")
            img.wait_for(state="attached")
            asset = MediaAsset.objects.get()
            assert asset.campaign_id == campaign.pk and asset.content_type == "image/png"
            assert img.get_attribute("src").startswith(f"{live_server.url}/media/")
            assert f"![spring]({img.get_attribute('src')})" in page.locator(
                "#id_body").input_value()

            with page.expect_file_chooser() as chooser:  # refused: the page's message shows
                toolbar.get_by_role("button", name="Image (upload)").click()
            chooser.value.set_files(str(text))
            page.get_by_text("This file is HTML, not an image", exact=False).wait_for()
            assert MediaAsset.objects.count() == 1

            toolbar.get_by_role("button", name="Content block").click()
            page.get_by_role("menuitem", name="Shop hours").click()
            frame.get_by_text("Open Monday to Saturday, 9 to 18.").wait_for()
            toolbar.get_by_role("button", name="Content block").click()
            page.get_by_role("menuitem", name="Signature").click()
            frame.get_by_text("the shop team").wait_for()
            assert frame.locator("strong", has_text="the shop team").count() == 1

            # An HTML body cannot take a Markdown block: offered, but not clickable.
            page.select_option("#id_body_format", "html")
            toolbar.get_by_role("button", name="Content block").click()
            assert page.get_by_role("menuitem", name="Signature").is_disabled()
            assert page.get_by_role("menuitem", name="Shop hours").is_enabled()
            page.keyboard.press("Escape")
            assert Campaign.objects.get(pk=campaign.pk).body == "Start.\n"  # nothing saved
    finally:
        connections.close_all()
