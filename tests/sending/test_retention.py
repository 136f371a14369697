"""The delivery log is kept for the retention period, pruned after it, and exportable."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from sending.models import Delivery, DeliveryAttempt, Mailing
from sending.retention import prune_attempts


@pytest.fixture
def attempts(db):
    mailing = Mailing.objects.create(from_email="n@example.org", subject_template="s",
                                     text_template="t")
    delivery = Delivery.objects.create(mailing=mailing, address="a@example.org",
                                       provider="google")
    now = timezone.now()
    for days in (1, 179, 181, 400):
        DeliveryAttempt.objects.create(delivery=delivery, at=now - timedelta(days=days), code=250,
                                       kind="delivered", outcome="sent", text=f"{days} days")
    return delivery


def test_prune_keeps_180_days_and_removes_older_in_batches(attempts):
    assert prune_attempts(days=180, batch=1) == 2
    kept = sorted(DeliveryAttempt.objects.values_list("text", flat=True))
    assert kept == ["1 days", "179 days"]
    assert prune_attempts(days=180) == 0


def test_export_csv_and_jsonl(attempts):
    since = (timezone.now() - timedelta(days=200)).strftime("%Y-%m-%d")
    out = io.StringIO()
    call_command("export_log", "--since", since, stdout=out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [r["text"] for r in rows] == ["181 days", "179 days", "1 days"]
    assert rows[0]["address"] == "a@example.org" and rows[0]["provider"] == "google"
    out = io.StringIO()
    call_command("export_log", "--since", since, "--format", "jsonl", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 3 and lines[-1]["code"] == 250


def test_export_refuses_bad_dates(db):
    with pytest.raises(CommandError, match="not a date"):
        call_command("export_log", "--since", "yesterday")
