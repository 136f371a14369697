"""The editor's day in headless Chromium, as an editor-role user, from import to report.

1. Import a UTF-8 CSV whose "Vorname" column is mapped to the name, and a
   Windows-1252 file (its encoding detected).
2. Compose with the toolbar: a personal field, a link, an uploaded image; the
   preview follows the typing without a save.
3. Build the audience "city contains berl" and read the live count.
4. "Send now" through its confirmation, which names the paused provider.
5. The mail at the sink shows the image by an absolute URL and the reader's name;
   the report names the paused provider and links to the breaker page.

Real parts: the live server and admin, Celery workers (maintenance: imports and
the start task; bulk: the sending engine), an aiosmtpd sink for the relays, the
breaker in a real Redis, Debian's Chromium. Screenshots at 1440 and 390 px land in
$ARTIFACTS_DIR/editor-day.
"""

from __future__ import annotations

import re

import pytest

from newsletter.models import Campaign, MailingList, Subscriber, SubscriberImport
from sending.sink import sink_messages
from tests.e2e.browser import artifacts_folder, browser_page
from tests.helpers import png_bytes, wait_until
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
UTF8_CSV = ("E-Mail,Vorname,Stadt\n"
            "ann@example.org,Jürgen,Berlin\n"
            "cem@outlook.com,Cem,berlin-Mitte\n"
            "dan@example.org,Dan,Hamburg\n")
CP1252_CSV = "E-Mail;Vorname;Stadt;Notiz\nbea@example.org;Zoë;Köln;\u201eGruß\u201c 5 \u20ac\n"


class Shots:
    """Each step's screenshot at desktop width and at a phone's, the page left at desktop."""

    def __init__(self, page, name: str):
        self.page, self.folder, self.n = page, artifacts_folder(name), 0

    def __call__(self, step: str) -> None:
        self.n += 1
        for label, size in (("1440", DESKTOP), ("390", PHONE)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=self.folder / f"{self.n:02d}-{step}-{label}.png",
                                 full_page=True)
        self.page.set_viewport_size(DESKTOP)


def _import(page, live_server, news, path, *, encoding: str, city_column: int) -> None:
    page.goto(f"{live_server.url}/admin/newsletter/subscriberimport/add/")
    page.select_option("#id_mailing_list", str(news.id))
    page.select_option("#id_mode", "confirmed")
    page.fill("#id_consent_statement", "Checkbox at checkout, 2024")
    page.set_input_files("#id_file", str(path))
    page.get_by_role("button", name="Save", exact=True).click()
    page.wait_for_url("**/mapping/")
    assert page.locator("#encoding-used").inner_text() == encoding
    assert page.locator("#role-1").input_value() == "name"  # "Vorname", recognised
    page.locator("input[name=key]").nth(city_column).fill("city")


def test_editor_day(live_server, settings, tmp_path, monkeypatch, celery_worker_factory,
                    smtp_sink, sending_env):  # noqa: F811
    from django.contrib.auth import get_user_model
    from django.db import connections

    from config.roles import EDITOR, roles_ensure
    from deliverability.breaker.engine import Breaker
    from newsletter.campaigns import layout_default

    settings.SITE_URL = live_server.url
    settings.MEDIA_ROOT = tmp_path / "media"
    news = MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_name="Shop News", from_email="news@shop.example")
    layout = layout_default()
    layout.postal_address = "Shop GmbH, Hauptstrasse 1, 10115 Berlin"
    layout.save()
    editor = get_user_model().objects.create_user("edna", "edna@shop.example", "s3cret-pw",
                                                  is_staff=True)
    editor.groups.add(roles_ensure()[EDITOR])
    celery_worker_factory("transactional,maintenance", name="ops", SITE_URL=live_server.url,
                          DATA_DIR=str(tmp_path))  # MEDIA_ROOT is DATA_DIR/media
    celery_worker_factory("bulk", name="bulk", SITE_URL=live_server.url,
                          DATA_DIR=str(tmp_path))
    (tmp_path / "kunden.csv").write_bytes(UTF8_CSV.encode("utf-8"))
    (tmp_path / "alt.csv").write_bytes(CP1252_CSV.encode("cp1252"))
    (tmp_path / "banner.png").write_bytes(png_bytes())
    # Outlook refused us earlier today: an operator paused it for four hours.
    Breaker().pause("microsoft_consumer", "bulk", seconds=4 * 3600, actor="olga")
    try:
        with browser_page(monkeypatch, timeout_ms=20_000, viewport=DESKTOP) as page:
            shot = Shots(page, "editor-day")
            page.goto(f"{live_server.url}/admin/login/?next=/admin/")
            page.fill("#id_username", "edna")
            page.fill("#id_password", "s3cret-pw")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/admin/")
            shot("home")

            # 1. Two imports: "Vorname" mapped to the name; a Windows-1252 file.
            _import(page, live_server, news, tmp_path / "kunden.csv", encoding="utf-8",
                    city_column=2)
            shot("import-mapping")
            page.get_by_role("button", name="Start the import").click()
            page.wait_for_url("**/change/")
            page.locator("#import-outcome").filter(has_text="3 subscriptions created").wait_for(
                timeout=30_000)
            _import(page, live_server, news, tmp_path / "alt.csv", encoding="cp1252",
                    city_column=2)
            assert "Gruß" in page.locator("#import-preview").inner_text()
            page.select_option("#role-3", "ignore")
            page.get_by_role("button", name="Start the import").click()
            page.wait_for_url("**/change/")
            page.locator("#import-outcome").filter(has_text="1 subscription created").wait_for(
                timeout=30_000)
            shot("import-done")
            assert SubscriberImport.objects.filter(state="done").count() == 2
            assert Subscriber.objects.get(email="ann@example.org").name == "Jürgen"
            assert Subscriber.objects.get(email="bea@example.org").attributes == {
                "city": "Köln"}

            # 2. Compose with the toolbar; the preview follows without a save.
            page.goto(f"{live_server.url}/admin/newsletter/campaign/add/")
            page.fill("#id_name", "Frühling")
            page.fill("#id_subject", "Frühling für {{ subscriber.name }}")
            _compose(page, tmp_path / "banner.png")
            assert not Campaign.objects.exists()  # the preview followed, nothing saved
            shot("compose")

            # 3. The audience: "city contains berl", counted live.
            page.get_by_label("Shop News").first.check()
            page.get_by_role("button", name="Add a rule").click()
            page.get_by_label("Attribute", exact=True).fill("city")
            page.get_by_label("Operator").select_option("contains")
            page.get_by_label("Value", exact=True).fill("berl")
            page.wait_for_function("document.querySelector('.pw-audience-count')"
                                   ".textContent.startsWith('2 recipients')")
            shot("audience")
            page.get_by_role("button", name="Save and continue editing").click()
            page.locator("#checklist").wait_for()
            campaign = Campaign.objects.get(name="Frühling")
            assert "/media/" in campaign.body

            # 4. Send now, through the confirmation that names the paused provider.
            page.locator("#send-now").click()
            page.wait_for_url("**/send-now/")
            assert page.locator("#send-now-count").inner_text() == "2 recipients"
            assert "Microsoft" in page.locator("#send-now-warnings").inner_text()
            shot("send-now")
            page.locator("#send-now-confirm").click()
            page.get_by_text("Sending started").wait_for()

            # 5. Ann's mail at the sink; Cem's waits for Outlook; the report says so.
            mail = wait_until(lambda: next(iter(sink_messages(smtp_sink.directory)), None),
                              timeout=60)
            assert mail.rcpt_to == "ann@example.org"
            assert "Jürgen" in mail.html and "Jürgen" in mail.message["Subject"]
            image = re.search(r'<img[^>]+src="([^"]+)"', mail.html).group(1)
            assert image.startswith(f"{live_server.url}/media/")
            assert page.request.get(image).headers["content-type"] == "image/png"
            page.goto(f"{live_server.url}/admin/newsletter/campaign/{campaign.pk}/report/")
            paused = page.locator("#paused-providers .paused-provider")
            assert paused.count() == 1
            line = paused.inner_text()
            assert "Microsoft Outlook.com / Hotmail" in line and "1 message waits" in line
            assert re.search(r"\(in [34] h\)", line), line  # when its mail goes, in words
            assert paused.locator("a.breaker-link").count() == 0  # the operators' page
            shot("report")
            assert len(sink_messages(smtp_sink.directory)) == 1
            page.goto(f"{live_server.url}/admin/")  # the home: lists, the campaign, the pause
            assert "Frühling" in page.locator("body").inner_text()
            shot("home-after")
    finally:
        connections.close_all()


def _compose(page, image_path) -> None:
    """Type the body through the toolbar editor and watch the live preview follow it."""
    page.locator(".EasyMDEContainer .CodeMirror").wait_for()
    toolbar = page.get_by_role("toolbar", name="Body formatting")
    frame = page.frame_locator("#live-frame")
    page.locator(".CodeMirror").click()
    page.keyboard.type("# Frühling im Laden\n\nHallo ")
    toolbar.get_by_role("button", name="Personal field").click()
    page.get_by_role("menuitem", name="{{ subscriber.name }}").click()
    page.keyboard.type("!\n\n")
    frame.get_by_role("heading", name="Frühling im Laden").wait_for()
    frame.get_by_text("Hallo Sample Reader!").wait_for()
    with page.expect_file_chooser() as chooser:
        toolbar.get_by_role("button", name="Image (upload)").click()
    chooser.value.set_files(str(image_path))
    page.get_by_text("Uploaded banner.png.").wait_for()
    frame.get_by_role("img", name="banner").wait_for(state="attached")
    assert "/media/" in page.locator("#id_body").input_value()
