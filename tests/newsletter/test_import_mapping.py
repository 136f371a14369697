"""Imports: encodings detected or chosen, the preview and its column mapping, the reason
shown when nothing was created, the live detail page after upload."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from config.roles import EDITOR, roles_ensure
from newsletter.exceptions import ImportFileError
from newsletter.import_preview import column_map_clean, detect_encoding, preview_read
from newsletter.imports import subscriber_import_run, subscribers_import_csv
from newsletter.models import Subscriber, SubscriberImport

pytestmark = pytest.mark.django_db

TEXT = "E-Mail;Vorname;Stadt;Notiz\nann@example.org;Jürgen;Köln;„Gruß“ \u2013 5 €\n" \
       "bea@example.org;Zoë;Genève;\n"


@pytest.mark.parametrize(("data", "expected"), [
    (TEXT.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8-sig"),
    (TEXT.encode("cp1252"), "cp1252"),
    ("email,name\nann@example.org,Jürgen Müller\n".encode("latin-1"), "latin-1"),
    (b"email,name\nann@example.org,\x81\xfc\n", "latin-1"),  # 0x81: undefined in cp1252
    (b"email\nann@example.org\n", "utf-8"),  # ASCII
    ("email,name\nann@example.org,Jürg".encode()[:-1], "utf-8"),  # cut inside 'ü'
])
def test_encoding_detection(data, expected):
    assert detect_encoding(data) == expected


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_import_reads_each_encoding_detected(mailing_list, encoding):
    data = TEXT.encode(encoding)
    stats = subscribers_import_csv(
        stream=io.BytesIO(data), mailing_list=mailing_list, mode="confirmed",
        column_map=["email", "name", "attribute:city", "ignore"])
    assert stats.subscriptions_created == 2 and stats.rows_invalid == 0
    ann = Subscriber.objects.get(email="ann@example.org")
    assert ann.name == "Jürgen" and ann.attributes == {"city": "Köln"}
    assert Subscriber.objects.get(email="bea@example.org").attributes == {"city": "Genève"}


def test_latin1_and_a_chosen_encoding(mailing_list):
    data = "email,name\nann@example.org,Jürgen Müller\n".encode("latin-1")
    subscribers_import_csv(stream=io.BytesIO(data), mailing_list=mailing_list,
                           mode="confirmed")
    assert Subscriber.objects.get().name == "Jürgen Müller"
    # UTF-8 chosen for a Windows-1252 file: the row is reported, not imported as mojibake.
    report = io.StringIO()
    stats = subscribers_import_csv(stream=io.BytesIO(TEXT.encode("cp1252")),
                                   mailing_list=mailing_list, mode="confirmed",
                                   encoding="utf-8", report_stream=report,
                                   column_map=["email", "name", "attribute:city", "ignore"])
    assert stats.rows_invalid == 2 and "not valid UTF-8" in report.getvalue()


def test_preview_guesses_vorname_as_name_and_shows_decoded_rows():
    preview = preview_read(TEXT.encode("cp1252"))
    assert (preview.detected, preview.encoding, preview.delimiter) == ("cp1252", "cp1252", ";")
    assert [(c.header, c.role) for c in preview.columns] == [
        ("E-Mail", "email"), ("Vorname", "name"), ("Stadt", "attribute"),
        ("Notiz", "attribute")]
    assert preview.rows[0] == ["ann@example.org", "Jürgen", "Köln", "„Gruß“ \u2013 5 €"]
    shown_as_latin1 = preview_read(TEXT.encode("cp1252"), "latin-1")
    assert shown_as_latin1.encoding == "latin-1" and "€" not in shown_as_latin1.rows[0][3]


def test_preview_finds_the_address_column_without_a_known_header():
    preview = preview_read(b"Kunde,Kontakt\nAnn,ann@example.org\nBea,bea@example.org\n")
    assert [c.role for c in preview.columns] == ["attribute", "email"]


@pytest.mark.parametrize(("roles", "message"), [
    (["name", "name", "ignore", "ignore"], "exactly one column as the e-mail"),
    (["email", "email", "ignore", "ignore"], "exactly one column as the e-mail"),
    (["email", "name", "name", "ignore"], "at most one column as the name"),
    (["email", "attribute", "attribute", "ignore"], "Two columns become"),
    (["email", "boss", "ignore", "ignore"], "unknown choice"),
    (["email"], "Map every column"),
])
def test_mapping_errors(roles, message):
    with pytest.raises(ImportFileError, match=message):
        column_map_clean(roles, ["", "x", "x", ""], ["E-Mail", "Vorname", "Stadt", "Notiz"])


def test_mapping_renames_attributes_to_safe_keys():
    assert column_map_clean(["email", "attribute", "attribute", "ignore"],
                            ["", "", "Wohn Ort!", ""], ["E-Mail", "Vorname", "Stadt", "Notiz"]
                            ) == ["email", "attribute:Vorname", "attribute:Wohn_Ort", "ignore"]


# --------------------------------------------------------------------------- the admin
@pytest.fixture
def editor(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    user = get_user_model().objects.create_user("edna", "edna@shop.example", "pw",
                                                is_staff=True)
    user.groups.add(roles_ensure()[EDITOR])
    client = Client()
    client.force_login(user)
    return client


def _upload(editor, mailing_list, data: bytes, name="kunden.csv"):
    return editor.post("/admin/newsletter/subscriberimport/add/", {
        "mailing_list": mailing_list.id, "mode": "confirmed", "encoding": "",
        "consent_statement": "Checkbox at checkout, shop.example 2024",
        "file": SimpleUploadedFile(name, data)})


def test_upload_previews_then_maps_then_opens_the_live_detail(editor, mailing_list,
                                                             django_capture_on_commit_callbacks):
    response = _upload(editor, mailing_list, TEXT.encode("cp1252"))
    job = SubscriberImport.objects.get()
    mapping = f"/admin/newsletter/subscriberimport/{job.id}/mapping/"
    assert response.status_code == 302 and response["Location"] == mapping
    assert job.state == "preview"
    page = editor.get(mapping).content.decode()
    assert "Jürgen" in page and "„Gruß“ \u2013 5 €" in page
    assert '<strong id="encoding-used">cp1252</strong>' in page
    assert '<option value="name" selected>' in page  # Vorname
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = editor.post(mapping, {"start": "1", "encoding": "cp1252",
                                         "role": ["email", "name", "attribute", "ignore"],
                                         "key": ["", "", "city", ""]})
    detail = f"/admin/newsletter/subscriberimport/{job.id}/change/"
    assert response.status_code == 302 and response["Location"] == detail
    assert len(callbacks) == 1  # the worker task, once committed
    job.refresh_from_db()
    assert job.state == "queued" and job.column_map == ["email", "name", "attribute:city",
                                                         "ignore"]
    assert 'http-equiv="refresh"' in editor.get(detail).content.decode()
    subscriber_import_run(import_id=job.id)  # what the worker does
    ann = Subscriber.objects.get(email="ann@example.org")
    assert ann.name == "Jürgen" and ann.attributes == {"city": "Köln"}
    page = editor.get(detail).content.decode()
    assert "2 subscriptions created." in page and 'http-equiv="refresh"' not in page
    assert editor.get(mapping)["Location"] == detail  # mapped once only


def test_a_bad_mapping_is_refused_on_the_page(editor, mailing_list):
    _upload(editor, mailing_list, TEXT.encode("utf-8"))
    job = SubscriberImport.objects.get()
    page = editor.post(f"/admin/newsletter/subscriberimport/{job.id}/mapping/", {
        "start": "1", "encoding": "", "role": ["ignore", "name", "attribute", "ignore"],
        "key": ["", "", "", ""]}).content.decode()
    assert "exactly one column as the e-mail" in page
    assert SubscriberImport.objects.get().state == "preview"


def test_nothing_created_shows_the_reasons_on_the_page(editor, mailing_list):
    data = b"email,name\nnot-an-address,Ann\nalso bad,Bob\nann@example.org;x\n"
    _upload(editor, mailing_list, data)
    job = SubscriberImport.objects.get()
    editor.post(f"/admin/newsletter/subscriberimport/{job.id}/mapping/", {
        "start": "1", "encoding": "", "role": ["email", "name"], "key": ["", ""]})
    subscriber_import_run(import_id=job.id)
    page = editor.get(f"/admin/newsletter/subscriberimport/{job.id}/change/").content.decode()
    assert "Nothing was created." in page
    assert "Enter a valid e-mail address. — 2 rows (first on line 2)" in page
    assert "1 fields where the header has 2 — 1 rows (first on line 4)" in page


def test_mapping_needs_the_add_permission(mailing_list, editor, db):
    _upload(editor, mailing_list, TEXT.encode("utf-8"))
    job = SubscriberImport.objects.get()
    author = get_user_model().objects.create_user("andy", "a@shop.example", "pw",
                                                  is_staff=True)
    from config.roles import AUTHOR

    author.groups.add(roles_ensure()[AUTHOR])
    client = Client()
    client.force_login(author)
    assert client.get(f"/admin/newsletter/subscriberimport/{job.id}/mapping/").status_code \
        == 403
