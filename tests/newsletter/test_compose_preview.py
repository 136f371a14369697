"""The compose page's live preview: unsaved fields rendered as the mail, for writers only."""

from __future__ import annotations

import json

import pytest

from newsletter import compose_admin
from newsletter.campaigns import campaign_preview, layout_default
from newsletter.compose import MAX_BODY_CHARS, PREVIEW_CSP, preview_document
from newsletter.models import Campaign
from tests.newsletter.test_campaign_admin import (  # noqa: F401 - fixtures
    Browser,
    _user,
    editor,
    quiet,
    setup,
)
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

URL = "/admin/newsletter/campaign/live-preview/"


def _fields(**changes):
    data = {"subject": "Hi {{ subscriber.name }}", "preheader": "Fresh news",
            "layout": layout_default().pk, "body_format": "markdown",
            "body": "# Hello {{ subscriber.name|default:\"you\" }}\n\n[Shop](https://shop.example/)",
            "text_body": ""}
    data.update(changes)
    return data


def test_unsaved_content_is_rendered_without_a_campaign(editor, setup):  # noqa: F811 - fixtures
    before = Campaign.objects.count()
    response = editor.post(URL, _fields())
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["subject"] == "Hi Sample Reader"
    assert "<h1" in data["html"] and "Hello Sample Reader</h1>" in data["html"]
    assert 'href="https://shop.example/"' in data["html"]
    assert "ACME Shop, Hauptstrasse 1" in data["html"]  # in the layout's footer
    assert "Shop (https://shop.example/)" in data["text"]
    assert Campaign.objects.count() == before  # nothing saved


def test_the_preview_document_carries_the_frame_policy(editor, setup):  # noqa: F811 - fixtures
    html = editor.post(URL, _fields()).json()["html"]
    head = html.index("<head")
    meta = html.index('<meta http-equiv="Content-Security-Policy"')
    assert head < meta < html.index("<body")
    assert PREVIEW_CSP in html and "sandbox" not in PREVIEW_CSP  # sandbox is the iframe's
    assert preview_document("<p>x</p>").startswith('<meta http-equiv="Content-Security')


def test_a_saved_campaign_previews_exactly_as_campaign_preview(editor, setup):  # noqa: F811 - fixtures
    campaign, sub = setup["campaign"], setup["subscription"]
    response = editor.post(URL, {
        "campaign": campaign.pk, "preview_as": sub.id, "subject": campaign.subject,
        "preheader": campaign.preheader, "layout": campaign.layout_id,
        "body_format": campaign.body_format, "body": campaign.body,
        "text_body": campaign.text_body})
    assert response.status_code == 200
    saved = campaign_preview(campaign, sub.id)
    data = response.json()
    assert data["html"] == preview_document(saved.html)
    assert (data["subject"], data["text"], data["from"]) == (saved.subject, saved.text,
                                                              saved.from_header)
    assert "Greetings to Berlin!" in data["html"]


def test_unsaved_edits_of_a_saved_campaign_show_and_are_not_saved(editor, setup):  # noqa: F811 - fixtures
    campaign, sub = setup["campaign"], setup["subscription"]
    response = editor.post(URL, _fields(campaign=campaign.pk, preview_as=sub.id,
                                        body="Now **{{ subscriber.attributes.city }}**",
                                        body_format="markdown"))
    assert "Now <strong>Berlin</strong>" in response.json()["html"]
    campaign.refresh_from_db()
    assert campaign.body == "Greetings to {{ subscriber.attributes.city }}!"


def test_html_body_format_is_passed_through(editor, setup):  # noqa: F811 - fixtures
    data = editor.post(URL, _fields(body_format="html",
                                    body="<p># not a heading {{ email }}</p>")).json()
    assert "<p># not a heading reader@example.org</p>" in data["html"]


def test_a_personalisation_error_is_shown_with_what_works(editor, setup):  # noqa: F811 - fixtures
    response = editor.post(URL, _fields(body="Hi *|FNAME|*"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "Mailchimp merge tag" in error and "{{ subscriber.name }}" in error
    assert "Allowed fields:" in error
    response = editor.post(URL, _fields(subject="Hi {{ settings.SECRET_KEY }}"))
    assert response.status_code == 400
    assert "unknown field 'settings'" in response.json()["error"]


@pytest.mark.parametrize(("changes", "message"), [
    ({"body_format": "latex"}, "Unknown body format 'latex'"),
    ({"layout": "abc"}, "No layout with the id 'abc'"),
    ({"layout": "999999"}, "No layout with the id '999999'"),
    ({"campaign": "999999"}, "No campaign with the id '999999'"),
    ({"campaign": "x"}, "No campaign with the id 'x'"),
    ({"subject": "s" * 999}, "The subject is longer than 998 characters"),
    ({"preheader": "p" * 256}, "The preheader is longer than 255 characters"),
    ({"body": "b" * (MAX_BODY_CHARS + 1)}, "The body is longer than"),
    ({"body": "{{ track.x }}"}, "filled in by click tracking"),
])
def test_bad_input_gets_a_clear_error_not_a_crash(editor, setup, settings, changes, message):  # noqa: F811 - fixtures
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * MAX_BODY_CHARS
    response = editor.post(URL, _fields(**changes))
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_empty_fields_still_preview_and_a_get_is_refused(editor, setup):  # noqa: F811 - fixtures
    response = editor.post(URL, {})
    assert response.status_code == 200 and "<html" in response.json()["html"]
    response = editor.get(URL)
    assert response.status_code == 405 and "POST" in response.json()["error"]


def test_only_who_may_write_campaigns_gets_a_preview(setup):  # noqa: F811 - fixtures
    for perms, status in (((), 403), (("view_campaign",), 403),
                          (("add_campaign",), 200), (("change_campaign",), 200)):
        user = _user(f"user-{'-'.join(perms) or 'none'}", group=False, perms=perms)
        response = Browser(user).post(URL, _fields())
        assert response.status_code == status, perms


def test_the_preview_needs_the_csrf_token(editor, setup):  # noqa: F811 - fixtures
    assert editor.post(URL, _fields(), csrf=False).status_code == 403


def test_the_compose_page_has_the_editor_beside_the_live_preview(editor, setup):  # noqa: F811 - fixtures
    campaign = setup["campaign"]
    for url in ("/admin/newsletter/campaign/add/",
                f"/admin/newsletter/campaign/{campaign.pk}/change/"):
        html = editor.get(url).content.decode()
        assert 'class="pw-compose"' in html and 'id="live-preview"' in html
        assert f'data-url="{URL}"' in html and 'sandbox=""' in html
        assert 'class="pw-compose-body"' in html and "easymde/easymde.min.js" in html
        assert "newsletter/compose.js" in html and 'id="live-phone"' in html
        assert "save to refresh" not in html and 'id="preview-desktop"' not in html
        assert "subscriber.attributes.&lt;key&gt;" in html  # the personal fields offered
    assert f'data-campaign="{campaign.pk}"' in html


def test_a_reader_without_the_write_permission_sees_the_saved_preview_only(setup):  # noqa: F811 - fixtures
    campaign = setup["campaign"]
    for name, perms in (("vic", ("view_campaign",)), ("ada", ("view_campaign", "add_campaign"))):
        reader = Browser(_user(name, group=False, perms=perms))
        html = reader.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
        assert 'id="live-preview"' not in html and 'id="preview-desktop"' in html, perms


def test_upload_and_block_buttons_get_urls_only_when_those_pages_exist(monkeypatch):
    def rendered():
        return compose_admin.ComposeEditor().render("body", "x", {"id": "id_body"})

    from django.urls import NoReverseMatch

    html = rendered()  # the media library's and the blocks' real pages
    assert 'data-upload-url="/admin/newsletter/mediaasset/upload/"' in html
    assert 'data-blocks-url="/admin/newsletter/contentblock/choices/"' in html

    def missing(name):
        raise NoReverseMatch(name)

    monkeypatch.setattr(compose_admin, "reverse", missing)  # a site without those pages
    html = rendered()
    assert "data-upload-url" not in html and "data-blocks-url" not in html
    fields = json.loads(html.split("data-fields=\"")[1].split('"')[0].replace("&quot;", '"'))
    assert "subscriber.name" in fields and "unsubscribe_url" in fields


def test_the_subscriber_found_by_address_is_offered(editor, mailing_list, setup):  # noqa: F811
    from newsletter.models import Subscriber, Subscription

    zed = Subscription.objects.create(
        subscriber=Subscriber.objects.create(email="zed@example.org", name="Zed"),
        mailing_list=mailing_list, status="pending")  # not in the audience's list
    campaign = setup["campaign"]
    html = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/"
                      "?preview_email=ZED@example.org").content.decode()
    assert f'<option value="{zed.id}" selected>zed@example.org (Zed)</option>' in html
