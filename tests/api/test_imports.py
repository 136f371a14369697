"""CSV import through the API: upload, then poll; the admin's import does the work."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from newsletter.imports import subscriber_import_run
from newsletter.models import ConsentRecord, SubscriberImport, Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, text: str, **fields):
    data = {"list": "shop-news", "mode": "confirmed",
            "consent_statement": "Checkbox at checkout on shop.example, 2025",
            "file": SimpleUploadedFile("people.csv", text.encode(), content_type="text/csv"),
            **fields}
    return client.post("/api/v1/imports/", data, format="multipart")


def test_upload_starts_an_import_and_progress_is_polled(api, mailing_list):
    client = api()
    response = upload(client, "email,name\nann@example.org,Ann\nnot-an-address,X\n")
    assert response.status_code == 202, response.json()
    job = response.json()
    assert (job["state"], job["percent"], job["list"]) == ("queued", 0, "shop-news")
    subscriber_import_run(import_id=job["id"])  # what the maintenance worker runs
    done = client.get(f"/api/v1/imports/{job['id']}/").json()
    assert (done["state"], done["percent"]) == ("done", 100)
    assert (done["rows_read"], done["rows_invalid"], done["subscriptions_created"]) == (2, 1, 1)
    assert Subscription.objects.get().status == "confirmed"
    assert ConsentRecord.objects.get().source == "import"
    assert SubscriberImport.objects.get().created_by.endswith("(API)")


def test_stated_consent_needs_a_statement(api, mailing_list):
    response = upload(api(), "email\na@example.org\n", consent_statement="")
    assert response.status_code == 400
    assert "consent_statement" in response.json()["errors"]
    assert not SubscriberImport.objects.exists()


def test_imports_need_the_subscribers_scope(api, mailing_list):
    assert upload(api(scopes=["read"]), "email\na@example.org\n").status_code == 403
    assert not SubscriberImport.objects.exists()
