"""The admin: embeddable form, upload of an import run by a real worker, export."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from newsletter.models import ConsentRecord, Subscriber, SubscriberImport, Subscription
from tests.helpers import wait_until


@pytest.fixture
def staff(db):
    """A logged-in editor (the admin's own CSRF handling is Django's, not tested here)."""
    user = get_user_model().objects.create_superuser("editor", "editor@example.org", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_list_page_shows_signup_link_and_embeddable_snippet(staff, mailing_list):
    page = staff.get(f"/admin/newsletter/mailinglist/{mailing_list.id}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/s/shop-news/subscribe/" in html  # the snippet posts to the embed endpoint
    assert "&lt;form method=&quot;post&quot;" in html  # shown as text, not rendered
    assert 'name="website"' not in html.split("<textarea")[0]  # only inside the snippet


def test_consent_log_cannot_be_edited_or_deleted_in_the_admin(staff, mailing_list):
    from newsletter.services import Client, subscription_create

    subscription_create(mailing_list=mailing_list, email="a@example.org",
                        client=Client(ip="10.0.0.1"))
    record = ConsentRecord.objects.get()
    assert staff.get("/admin/newsletter/consentrecord/").status_code == 200
    assert staff.get(f"/admin/newsletter/consentrecord/{record.id}/delete/").status_code == 403
    page = staff.get(f"/admin/newsletter/consentrecord/{record.id}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_import_upload_needs_a_consent_statement_or_opt_in_request(staff, mailing_list):
    response = staff.post("/admin/newsletter/subscriberimport/add/", {
        "mailing_list": mailing_list.id, "mode": "confirmed", "consent_statement": "",
        "file": SimpleUploadedFile("a.csv", b"email\na@example.org\n")})
    assert response.status_code == 200
    assert "Say how these people agreed" in response.content.decode()
    assert not SubscriberImport.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_uploaded_import_runs_in_a_worker_and_reports_bad_rows(
        staff, mailing_list, settings, tmp_path, celery_worker_factory):
    settings.MEDIA_ROOT = tmp_path / "media"
    celery_worker_factory("maintenance", name="imports", DATA_DIR=str(tmp_path))
    upload = SimpleUploadedFile("customers.csv", b"email,name,plan\nann@example.org,Ann,pro\n"
                                b"broken-address,Bob,free\ncy@example.org,Cy,free\n")
    response = staff.post("/admin/newsletter/subscriberimport/add/", {
        "mailing_list": mailing_list.id, "mode": "confirmed",
        "consent_statement": "Checkbox at checkout, shop.example 2024", "file": upload})
    assert response.status_code == 302
    job = SubscriberImport.objects.get()
    assert job.created_by == "editor" and job.source_name == "customers.csv"
    assert response["Location"].endswith(f"/{job.id}/mapping/")  # the preview step first
    response = staff.post(response["Location"], {
        "start": "1", "encoding": "", "role": ["email", "name", "attribute"],
        "key": ["", "", "plan"]})
    assert response["Location"].endswith(f"/{job.id}/change/")  # then the live detail page
    wait_until(lambda: SubscriberImport.objects.get().state in ("done", "failed"), timeout=30)
    job.refresh_from_db()
    assert job.state == "done", job.error
    assert (job.rows_read, job.rows_invalid, job.subscriptions_created) == (3, 1, 2)
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "ann@example.org", "cy@example.org"}
    page = staff.get(f"/admin/newsletter/subscriberimport/{job.id}/change/")
    assert b'<progress max="100" value="100"' in page.content
    report = staff.get(f"/admin/newsletter/subscriberimport/{job.id}/report/")
    assert report.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[1][:2] == ["3", "broken-address"]
    assert ConsentRecord.objects.filter(event="import", subscriber_import=job).count() == 2


def test_export_action_streams_the_list_as_csv(staff, mailing_list):
    person = Subscriber.objects.create(email="ann@example.org", name="Ann",
                                       attributes={"plan": "pro"})
    Subscription.objects.create(subscriber=person, mailing_list=mailing_list, status="confirmed")
    response = staff.post("/admin/newsletter/mailinglist/", {
        "action": "export_csv", "_selected_action": [mailing_list.id]})
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert body.splitlines()[0] == ("email,name,status,subscribed_at,confirmed_at,"
                                    "unsubscribed_at,plan")
    assert body.splitlines()[1].startswith("ann@example.org,Ann,confirmed,")


def test_admin_erase_action_erases_and_suppresses(staff, mailing_list):
    from deliverability.suppression import is_suppressed

    person = Subscriber.objects.create(email="ann@example.org", name="Ann")
    Subscription.objects.create(subscriber=person, mailing_list=mailing_list, status="confirmed")
    staff.post("/admin/newsletter/subscriber/", {"action": "erase",
                                                  "_selected_action": [person.id]})
    assert not Subscriber.objects.exists() and is_suppressed("ann@example.org")
