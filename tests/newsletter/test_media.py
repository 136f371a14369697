"""The media library: uploads checked by content, random names, dedupe, the public
address and its headers, absolute image URLs in a real mail, the admin, permissions."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from config.roles import AUTHOR, EDITOR, OPERATOR, roles_ensure
from newsletter import conf
from newsletter.campaigns import campaign_parts, campaign_test_send, layout_default
from newsletter.media import media_store
from newsletter.media_models import MediaAsset
from newsletter.models import Campaign, Subscriber, Subscription

pytestmark = pytest.mark.django_db
UPLOAD = "/admin/newsletter/mediaasset/upload/"


def image_bytes(kind: str = "PNG", size=(40, 30), color=(200, 30, 30), mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format=kind)
    return out.getvalue()


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "https://news.example.org"
    return settings.MEDIA_ROOT


def user_with(role: str | None, name: str | None = None):
    user = get_user_model().objects.create_user(name or f"u-{role or 'staff'}",
                                                password="pw-12345678", is_staff=True)
    if role:
        user.groups.add(roles_ensure()[role])
    return get_user_model().objects.get(pk=user.pk)


@pytest.fixture
def author_client():
    """An author in a browser that checks CSRF, with its token at hand."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_with(AUTHOR))
    client.get(reverse("admin:newsletter_campaign_changelist"))
    client.token = client.cookies["csrftoken"].value
    return client


def upload(client, data: bytes, name="photo.png", **fields):
    payload = {"file": SimpleUploadedFile(name, data, content_type="image/png"), **fields}
    return client.post(UPLOAD, payload, HTTP_X_CSRFTOKEN=getattr(client, "token", ""))


def stored_files(root) -> list:
    folder = root / "library"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --------------------------------------------------------------------------- accepted
@pytest.mark.parametrize(("kind", "content_type", "extension"), [
    ("PNG", "image/png", "png"), ("JPEG", "image/jpeg", "jpg"),
    ("GIF", "image/gif", "gif"), ("WEBP", "image/webp", "webp"),
])
def test_each_accepted_kind_is_stored_under_a_random_name_and_answered_as_snippets(
        author_client, media_root, kind, content_type, extension):
    data = image_bytes(kind, size=(800, 200))
    response = upload(author_client, data, name=f"Team photo.{extension}", alt="Our team")
    assert response.status_code == 201, response.content
    answer = response.json()
    asset = MediaAsset.objects.get()
    assert (asset.content_type, asset.width, asset.height, asset.size) == (
        content_type, 800, 200, len(data))
    assert asset.label == f"Team photo.{extension}" and asset.alt == "Our team"
    assert asset.file.name == f"library/{asset.key}.{extension}"
    assert stored_files(media_root) == [f"{asset.key}.{extension}"]
    assert len(asset.key) == 32 and "photo" not in asset.file.name.lower()
    url = f"https://news.example.org/media/{asset.key}.{extension}"
    assert answer["url"] == url and answer["existing"] is False and answer["id"] == asset.pk
    assert answer["markdown"] == f"![Our team]({url})"
    assert answer["html"] == f'<img src="{url}" alt="Our team" width="600">'  # capped


def test_an_upload_for_a_campaign_is_stored_with_it_and_a_missing_one_is_refused(
        author_client):
    campaign = Campaign.objects.create(name="Spring")
    assert upload(author_client, image_bytes(), campaign=str(campaign.pk)).status_code == 201
    assert MediaAsset.objects.get().campaign == campaign
    refused = upload(author_client, image_bytes(color=(1, 2, 3)), campaign="99999")
    assert refused.status_code == 400 and "No campaign with id '99999'" in refused.json()["error"]


def test_the_same_bytes_are_stored_once(author_client, media_root):
    data = image_bytes()
    first = upload(author_client, data, name="a.png").json()
    second = upload(author_client, data, name="copy of a.png")
    assert second.status_code == 200 and second.json()["existing"] is True
    assert second.json()["url"] == first["url"] and second.json()["id"] == first["id"]
    assert MediaAsset.objects.count() == 1 and len(stored_files(media_root)) == 1


def test_a_hostile_file_name_is_only_a_label_and_never_reaches_the_body(author_client):
    name = '../../etc/{{ settings.SECRET_KEY }}<script>"x".png'
    answer = upload(author_client, image_bytes(), name=name).json()
    asset = MediaAsset.objects.get()
    assert "/" not in asset.label and "{" not in asset.label and "<" not in asset.label
    assert asset.file.name == f"library/{asset.key}.png"
    assert "{{" not in answer["markdown"] and "<script" not in answer["html"]
    campaign = Campaign(name="x", subject="s", body=answer["markdown"])
    from newsletter.campaigns import campaign_errors

    assert "body" not in campaign_errors(campaign)


def test_the_limits_are_told_to_the_toolbar(author_client):
    limits = author_client.get(UPLOAD).json()
    assert limits == {"max_bytes": conf.MEDIA_MAX_BYTES, "max_pixels": conf.MEDIA_MAX_PIXELS,
                      "types": ["image/png", "image/jpeg", "image/gif", "image/webp"],
                      "field": "file"}


# --------------------------------------------------------------------------- refused
SVG = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" '
       b'height="10"><script>alert(document.cookie)</script></svg>')
HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


@pytest.mark.parametrize(("data", "message"), [
    (SVG, "SVG images are not accepted: an SVG is a document that can carry scripts"),
    (b"  <svg onload='alert(1)'/>", "SVG images are not accepted"),
    (HTML, "This file is HTML, not an image, whatever its name says"),
    (b"GIF89a" + b"\x00" * 20, "The image is damaged"),
    (b"\x00\x01 random bytes " * 50, "not an image of an accepted kind: only PNG, JPEG, GIF"),
    (b"", "The file is empty."),
])
def test_files_that_are_not_accepted_images_are_refused_with_the_reason(
        author_client, media_root, data, message):
    response = upload(author_client, data, name="innocent.png")
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert MediaAsset.objects.count() == 0 and stored_files(media_root) == []


@pytest.mark.parametrize("kind", ["BMP", "TIFF", "ICO"])
def test_real_images_of_other_kinds_are_refused(author_client, kind):
    response = upload(author_client, image_bytes(kind, size=(16, 16)), name=f"x.{kind.lower()}")
    assert response.status_code == 400
    assert "only PNG, JPEG, GIF and WebP" in response.json()["error"]


def test_a_truncated_image_is_refused_as_damaged(author_client):
    noisy = Image.frombytes("RGB", (300, 300), bytes(range(256)) * (300 * 300 * 3 // 256 + 1))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    data = out.getvalue()
    response = upload(author_client, data[: len(data) // 2])
    assert response.status_code == 400
    assert "The image is damaged: it does not decode" in response.json()["error"]


def test_a_decompression_bomb_is_refused_before_it_is_decoded(author_client):
    bomb = image_bytes("PNG", size=(6000, 6000), color=0, mode="1")  # 36 megapixels
    assert len(bomb) < 100_000  # a small file...
    response = upload(author_client, bomb)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "6,000 x 6,000 pixels (36,000,000); at most 25,000,000 pixels" in error


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size (RFC 2083 IHDR) and holds one empty data chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
                                                                 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


@pytest.mark.parametrize("side", [20_000, 100_000])  # over our cap; over Pillow's own too
def test_a_bomb_that_only_declares_its_size_is_refused_from_the_header(author_client, side):
    response = upload(author_client, png_header_only(side, side))
    assert response.status_code == 400
    error = response.json()["error"]
    assert "pixels" in error and "25,000,000" in error and "damaged" not in error


def test_a_file_over_the_size_limit_is_refused_with_413(author_client, monkeypatch):
    data = image_bytes(size=(200, 200))
    monkeypatch.setattr(conf, "MEDIA_MAX_BYTES", len(data) - 1)
    response = upload(author_client, data)
    assert response.status_code == 413
    assert "an image may have at most" in response.json()["error"]
    assert MediaAsset.objects.count() == 0


def test_a_body_too_long_is_refused_before_it_is_read(author_client, monkeypatch):
    monkeypatch.setattr(conf, "MEDIA_MAX_BYTES", 2048)
    huge = image_bytes() + b"\x00" * 200_000
    response = author_client.post(UPLOAD, {"file": SimpleUploadedFile("x.png", huge)},
                                  HTTP_X_CSRFTOKEN=author_client.token)
    assert response.status_code == 413
    assert response.json() == {"error": "The file is larger than 2,048 bytes, the most an "
                                        "image may have."}


def test_an_upload_without_a_csrf_token_is_refused(author_client):
    author_client.token = ""
    assert upload(author_client, image_bytes()).status_code == 403
    assert MediaAsset.objects.count() == 0


def test_an_upload_without_a_file_says_which_field(author_client):
    response = author_client.post(UPLOAD, {}, HTTP_X_CSRFTOKEN=author_client.token)
    assert response.status_code == 400
    assert "form field “file”" in response.json()["error"]


@pytest.mark.parametrize("role", [None, OPERATOR])
def test_who_may_not_add_images_gets_403_and_nothing_is_stored(role):
    client = Client()
    client.force_login(user_with(role))
    response = client.post(UPLOAD, {"file": SimpleUploadedFile("x.png", image_bytes())})
    assert response.status_code == 403 and "may not upload" in response.json()["error"]
    assert client.get(UPLOAD).status_code == 403
    assert MediaAsset.objects.count() == 0


def test_an_anonymous_upload_goes_to_the_login():
    response = Client().post(UPLOAD, {"file": SimpleUploadedFile("x.png", image_bytes())})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --------------------------------------------------------------------------- served
def test_the_image_is_served_with_its_type_and_safe_headers_with_debug_off(settings):
    settings.DEBUG = False
    data = image_bytes("JPEG")
    asset, _ = media_store(data=data, filename="a.jpg")
    response = Client().get(f"/media/{asset.key}.jpg")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'none'"
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    again = Client().get(f"/media/{asset.key}.jpg", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again["Cache-Control"] == response["Cache-Control"]


def test_only_library_names_are_served(settings, media_root):
    asset, _ = media_store(data=image_bytes(), filename="a.png")
    secret = media_root / "imports" / "reports"
    secret.mkdir(parents=True)
    (secret / "report.csv").write_text("ann@example.org,bounced\n")
    client = Client()
    for name in (f"{asset.key}.jpg", f"{asset.key.upper()}.png", "imports/reports/report.csv",
                 "..%2Fimports%2Freports%2Freport.csv", f"{asset.key}.png.csv",
                 f"{'0' * 32}.png", f"{asset.key}.svg"):
        assert client.get(f"/media/{name}").status_code == 404, name
    assert client.get(f"/media/{asset.key}.png").status_code == 200
    assert client.post(f"/media/{asset.key}.png").status_code == 405


# --------------------------------------------------------------------------- in the mail
def test_an_image_in_a_campaign_body_reaches_the_recipient_with_an_absolute_address(
        smtp_sink, mailing_list, settings):
    from sending.sink import sink_messages
    from sending.transactional import transactional_email_deliver

    asset, _ = media_store(data=image_bytes(), filename="logo.png", alt="Logo")
    layout = layout_default()
    layout.postal_address = "ACME, Hauptstrasse 1, Berlin"
    layout.html = layout.html.replace("<body>", '<body><img src="/media/header.png" alt="">')
    layout.save()
    campaign = Campaign.objects.create(
        name="Spring", subject="Hello", layout=layout,
        body=f"![Logo](/media/{asset.key}.png)\n\nSee [the shop](/shop/) and "
             "[elsewhere](//cdn.example.net/x) or write `src=\"/literal\"`.")
    campaign.lists.add(mailing_list)
    subscriber = Subscriber.objects.create(email="ann@example.org", name="Ann")
    Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                status="confirmed")
    campaign_test_send(campaign, ["ann@example.org"])
    from sending.models import TransactionalEmail

    transactional_email_deliver(TransactionalEmail.objects.get(purpose="test").id)
    (message,) = sink_messages(smtp_sink.directory)
    html = message.html
    image_url = f"https://news.example.org/media/{asset.key}.png"
    assert f'src="{image_url}"' in html
    assert 'src="https://news.example.org/media/header.png"' in html  # the layout's too
    assert 'href="https://news.example.org/shop/"' in html
    assert 'href="//cdn.example.net/x"' in html  # protocol-relative: not ours to change
    assert "/literal" in html and "news.example.org/literal" not in html  # text stays
    assert "https://news.example.org/shop/" in message.text
    assert Client().get(image_url.removeprefix("https://news.example.org")).status_code == 200


def test_personalisation_tags_in_links_survive_the_rewrite(mailing_list):
    campaign = Campaign.objects.create(
        name="x", subject="s", layout=layout_default(), body_format="html",
        body='<a href="/p/{{ subscriber.attributes.code|default:"none" }}/">mine</a>')
    assert ('href="https://news.example.org/p/{{ subscriber.attributes.code|default:"none" }}/"'
            in campaign_parts(campaign).html)


# --------------------------------------------------------------------------- admin
def test_the_admin_form_uploads_and_refuses_an_svg_and_a_duplicate(media_root):
    client = Client()
    client.force_login(user_with(AUTHOR))
    add = reverse("admin:newsletter_mediaasset_add")
    refused = client.post(add, {"upload": SimpleUploadedFile("x.png", SVG), "alt": ""})
    assert refused.status_code == 200 and "SVG images are not accepted" in refused.content.decode()
    data = image_bytes("GIF")
    done = client.post(add, {"upload": SimpleUploadedFile("banner.gif", data), "alt": ""})
    assert done.status_code == 302
    asset = MediaAsset.objects.get()
    assert (asset.label, asset.alt, asset.content_type) == ("banner.gif", "banner", "image/gif")
    assert asset.uploaded_by.username == "u-author"
    again = client.post(add, {"upload": SimpleUploadedFile("b.gif", data), "alt": ""})
    assert "This image is in the library already" in again.content.decode()
    listing = client.get(reverse("admin:newsletter_mediaasset_changelist")).content.decode()
    assert f'src="/media/{asset.key}.gif"' in listing  # the thumbnail


def test_the_admin_form_refuses_a_body_too_long_without_reading_it(monkeypatch):
    monkeypatch.setattr(conf, "MEDIA_MAX_BYTES", 2048)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_with(AUTHOR))
    add = reverse("admin:newsletter_mediaasset_add")
    response = client.post(add, {"upload": SimpleUploadedFile("x.png", b"\x00" * 200_000)})
    assert response.status_code == 302 and response["Location"] == add
    page = client.get(add).content.decode()
    assert "larger than 2,048 bytes" in page
    assert client.post(add, {"upload": SimpleUploadedFile("x.png", image_bytes())}
                       ).status_code == 403  # small enough: the CSRF check still applies


def test_an_image_a_sent_campaign_shows_cannot_be_deleted_and_the_page_says_why(media_root):
    from sending.models import Mailing

    asset, _ = media_store(data=image_bytes(), filename="a.png")
    mailing = Mailing.objects.create(from_email="a@example.org", subject_template="s",
                                     text_template="t", html_template=f'<img src="'
                                     f'https://news.example.org/media/{asset.key}.png">')
    Campaign.objects.create(name="Autumn sale", mailing=mailing, state="sent")
    client = Client()
    client.force_login(user_with(EDITOR))
    delete = reverse("admin:newsletter_mediaasset_delete", args=[asset.pk])
    page = client.get(delete).content.decode()
    assert "Campaign “Autumn sale” was sent with this image" in page
    client.post(delete, {"post": "yes"})
    assert MediaAsset.objects.filter(pk=asset.pk).exists()
    assert stored_files(media_root) == [asset.filename]
    changelist = reverse("admin:newsletter_mediaasset_changelist")
    client.post(changelist, {"action": "delete_selected", "_selected_action": [asset.pk],
                             "post": "yes"})
    assert MediaAsset.objects.filter(pk=asset.pk).exists()


def test_an_unused_image_is_deleted_with_its_file(media_root, django_capture_on_commit_callbacks):
    asset, _ = media_store(data=image_bytes(), filename="a.png")
    client = Client()
    client.force_login(user_with(EDITOR))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:newsletter_mediaasset_delete", args=[asset.pk]),
                               {"post": "yes"})
    assert response.status_code == 302
    assert not MediaAsset.objects.exists() and stored_files(media_root) == []
    assert Client().get(f"/media/{asset.filename}").status_code == 404


def test_an_author_may_upload_but_not_delete():
    author = user_with(AUTHOR)
    assert author.has_perm("newsletter.add_mediaasset")
    assert not author.has_perm("newsletter.delete_mediaasset")
    asset, _ = media_store(data=image_bytes(), filename="a.png")
    client = Client()
    client.force_login(author)
    assert client.get(reverse("admin:newsletter_mediaasset_delete",
                              args=[asset.pk])).status_code == 403



def test_the_change_form_keeps_label_and_alt_free_of_markup_and_tags():
    asset, _ = media_store(data=image_bytes(), filename="a.png")
    client = Client()
    client.force_login(user_with(AUTHOR))
    page = client.get(reverse("admin:newsletter_mediaasset_change", args=[asset.pk]))
    assert f"https://news.example.org/media/{asset.filename}" in page.content.decode()
    client.post(reverse("admin:newsletter_mediaasset_change", args=[asset.pk]),
                {"label": "a/../b{{ x }}.png", "alt": "Hi {{ settings.SECRET_KEY }} <b>"})
    asset.refresh_from_db()
    assert (asset.label, asset.alt) == ("b x .png", "Hi settings.SECRET_KEY b")
