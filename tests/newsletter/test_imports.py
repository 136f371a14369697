"""CSV imports: good rows in, bad rows reported, nobody re-subscribed silently; export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from deliverability.suppression import suppress
from newsletter.exceptions import ImportFileError
from newsletter.imports import subscribers_export_csv, subscribers_import_csv
from newsletter.models import (
    ConsentRecord,
    MailingList,
    Subscriber,
    SubscriberImport,
    Subscription,
)
from tests.newsletter.helpers import confirmation_mails

pytestmark = pytest.mark.django_db

ENGINES = ["orm", "copy"] if connection.vendor == "postgresql" else ["orm"]

BROKEN = (
    b"\xef\xbb\xbfEmail,Name,City\r\n"                         # 1 header with a BOM
    b"ann@example.org,Ann,Bern\r\n"                            # 2 good
    b"not-an-address,Bob,Basel\r\n"                            # 3 invalid address
    b"cy@example.org,Cy\r\n"                                   # 4 too few fields
    b"dee@example.org,Dee,Zug,extra\r\n"                       # 5 too many fields
    b"eve@example.org,Ev\xff\xfe,Chur\r\n"                     # 6 invalid UTF-8
    b"fay@example.org," + b"F" * 10_000 + b",Thun\r\n"         # 7 name of 10 kB
    b"\r\n"                                                    # 8 blank: skipped
    b"gus@EXAMPLE.org,Gus,Sion\r\n"                            # 9 good
    b"ANN@example.org,Annie,Bienne\r\n"                        # 10 same address as 2: merged
    b"gus@example.org,,Olten\r\n"                              # 11 duplicate of 9: merged
    b"hal@example.org,\"Hal\r\nBcc: x@evil.example\",Aarau\r\n"  # 12-13 header injection
    b"ida@example.org,Ida\x00,Genf\r\n"                        # 14 NUL
    b"jo@example.org,<script>alert(1)</script>,Lugano\r\n"     # 15 HTML: stored inertly
    b"kim@bounced.example,Kim,Uri\r\n"                         # 16 suppressed
)


def _import(mailing_list, data: bytes, engine: str, mode="confirmed", **kwargs):
    report = io.StringIO()
    stats = subscribers_import_csv(stream=io.BytesIO(data), mailing_list=mailing_list,
                                   mode=mode, report_stream=report, engine=engine,
                                   **kwargs)
    report.seek(0)
    return stats, list(csv.DictReader(report))


@pytest.mark.parametrize("engine", ENGINES)
def test_csv_with_broken_rows_imports_good_rows_and_reports_the_rest(mailing_list, engine):
    suppress(address="kim@bounced.example", reason="hard_bounce")
    stats, report = _import(mailing_list, BROKEN, engine, batch_rows=3)
    assert set(Subscriber.objects.values_list("email", flat=True)) == {
        "ann@example.org", "gus@example.org", "jo@example.org"}  # one normalisation
    assert Subscription.objects.filter(status="confirmed").count() == 3
    assert ConsentRecord.objects.filter(event="import").count() == 3
    reasons = {int(r["line"]): r["reason"] for r in report}
    assert set(reasons) == {3, 4, 5, 6, 7, 13, 14, 16}
    assert "valid e-mail address" in reasons[3]
    assert reasons[4] == "2 fields where the header has 3"
    assert reasons[5] == "4 fields where the header has 3"
    assert reasons[6] == "not valid UTF-8"
    assert "longer than 200" in reasons[7]
    assert "line breaks" in reasons[13]
    assert "NUL" in reasons[14]
    assert "suppressed" in reasons[16]
    gus = Subscriber.objects.get(email="gus@example.org")
    assert (gus.name, gus.attributes) == ("Gus", {"City": "Olten"})  # merged, later row wins
    ann = Subscriber.objects.get(email="ann@example.org")
    assert (ann.name, ann.attributes) == ("Annie", {"City": "Bienne"})
    assert Subscriber.objects.get(email="jo@example.org").name == "<script>alert(1)</script>"
    assert (stats.rows_read, stats.rows_invalid, stats.rows_suppressed) == (13, 7, 1)
    assert stats.subscriptions_created == 3


@pytest.mark.parametrize("engine", ENGINES)
def test_import_never_resubscribes_an_unsubscribed_person(mailing_list, engine):
    person = Subscriber.objects.create(email="out@example.org", name="Out",
                                       attributes={"plan": "free", "city": "Bern"})
    Subscription.objects.create(subscriber=person, mailing_list=mailing_list,
                                status="unsubscribed")
    stats, _ = _import(mailing_list, b"email,name,plan\nout@example.org,Outer,pro\n", engine)
    assert Subscription.objects.get().status == "unsubscribed"
    assert stats.subscriptions_existing == 1 and stats.subscriptions_created == 0
    person.refresh_from_db()
    assert person.name == "Outer"
    assert person.attributes == {"plan": "pro", "city": "Bern"}
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize("engine", ENGINES)
def test_import_adds_existing_subscriber_to_another_list(mailing_list, engine):
    other = MailingList.objects.create(name="Other", slug="other")
    person = Subscriber.objects.create(email="two@example.org")
    Subscription.objects.create(subscriber=person, mailing_list=other, status="confirmed")
    stats, _ = _import(mailing_list, b"email\ntwo@example.org\nthree@example.org\n", engine)
    assert stats.subscribers_created == 1 and stats.subscriptions_created == 2
    assert Subscription.objects.filter(mailing_list=mailing_list).count() == 2


def test_semicolon_separated_file_is_read(mailing_list):
    _import(mailing_list, "email;name;Stadt\nzoe@example.org;Zoë;Zürich\n".encode(), "orm")
    zoe = Subscriber.objects.get()
    assert (zoe.name, zoe.attributes) == ("Zoë", {"Stadt": "Zürich"})


@pytest.mark.parametrize("data", [b"", b"name,city\nAnn,Bern\n", b"em\xffail\nx@example.org\n",
                                  b"email,name,email\nx@example.org,X,y@example.org\n"])
def test_unusable_file_is_refused_with_a_clear_error_and_imports_nothing(mailing_list, data):
    with pytest.raises(ImportFileError):
        _import(mailing_list, data, "orm")
    assert not Subscriber.objects.exists()


def test_request_opt_in_mode_adds_pending_rows_and_mails_each_once(mailing_list):
    from newsletter.imports import subscriber_import_request_opt_in

    job = SubscriberImport.objects.create(mailing_list=mailing_list, mode="request_opt_in")
    _import(mailing_list, b"email\na@example.org\nb@example.org\n", "orm",
            mode="request_opt_in", subscriber_import=job)
    assert set(Subscription.objects.values_list("status", flat=True)) == {"pending"}
    assert subscriber_import_request_opt_in(import_id=job.id) == 2
    assert subscriber_import_request_opt_in(import_id=job.id) == 0  # a rerun mails nobody again
    assert confirmation_mails().count() == 2
    record = ConsentRecord.objects.filter(event="import").first()
    assert record.consent_text is not None and record.subscriber_import_id == job.id


def test_command_imports_and_writes_the_report(mailing_list, tmp_path):
    source = tmp_path / "people.csv"
    source.write_bytes(b"email,name\nok@example.org,Ok\nbroken,Nope\n")
    report = tmp_path / "report.csv"
    out = io.StringIO()
    call_command("import_subscribers", str(source), "--list", "shop-news", "--consent",
                 "Signed up at our shop counter", "--report", str(report), "--no-progress",
                 stdout=out)
    assert "2 rows read" in out.getvalue() and "1 invalid" in out.getvalue()
    assert report.read_text().splitlines()[1].startswith("3,broken,")
    job = SubscriberImport.objects.get()
    assert (job.state, job.consent_statement) == ("done", "Signed up at our shop counter")
    assert Subscription.objects.get().status == "confirmed"


def test_command_shows_a_progress_bar(mailing_list, tmp_path, capsys):
    source = tmp_path / "people.csv"
    source.write_text("email\n" + "".join(f"p{i}@example.org\n" for i in range(300)))
    call_command("import_subscribers", str(source), "--list", "shop-news", "--consent", "x")
    assert "100.0%" in capsys.readouterr().err


def test_command_refuses_unknown_list_and_missing_consent_statement(mailing_list, tmp_path):
    source = tmp_path / "people.csv"
    source.write_text("email\nx@example.org\n")
    with pytest.raises(CommandError, match="no list with slug 'nope'"):
        call_command("import_subscribers", str(source), "--list", "nope", "--consent", "x")
    with pytest.raises(CommandError, match="statement"):
        call_command("import_subscribers", str(source), "--list", "shop-news", "--consent", " ")
    with pytest.raises(CommandError, match="import failed: No 'email' column"):
        source.write_text("mail address\nx@example.org\n")
        call_command("import_subscribers", str(source), "--list", "shop-news", "--consent", "x",
                     "--no-progress")


@pytest.mark.parametrize("engine", ENGINES)
def test_export_imports_back_unchanged(mailing_list, engine):
    _import(mailing_list, b"email,name,plan\nann@example.org,Ann,pro\n"
            b"bob@example.org,=HYPERLINK(\"x\"),free\n", engine)
    exported = "".join(subscribers_export_csv(mailing_list=mailing_list))
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [r["email"] for r in rows] == ["ann@example.org", "bob@example.org"]
    assert rows[1]["name"].startswith("'=")  # no formula when opened in a spreadsheet
    assert rows[0]["plan"] == "pro" and rows[0]["status"] == "confirmed"
    copy = MailingList.objects.create(name="Copy", slug="copy")
    _import(copy, exported.encode(), engine)
    assert Subscription.objects.filter(mailing_list=copy).count() == 2


if connection.vendor == "postgresql":

    @pytest.mark.django_db(transaction=True)
    def test_parallel_writers_import_everything_once_even_with_duplicates_across_batches(
            monkeypatch):
        """Outside a transaction PostgreSQL batches are written by several threads."""
        from newsletter import conf

        monkeypatch.setattr(conf, "IMPORT_WRITERS", 3)
        mailing_list = MailingList.objects.create(name="Big", slug="big")
        lines = ["email,name"]
        for i in range(3000):
            lines.append(f"p{i % 1700}@example.org,P{i}")  # 1,300 repeats, in other batches
        stats, report = _import(mailing_list, ("\n".join(lines) + "\n").encode(), "copy",
                                batch_rows=250)
        assert Subscription.objects.filter(mailing_list=mailing_list).count() == 1700
        assert ConsentRecord.objects.filter(event="import").count() == 1700
        assert stats.subscriptions_created == 1700 and report == []
        assert stats.subscriptions_existing + stats.rows_duplicate == 1300
        assert Subscriber.objects.get(email="p5@example.org").name == "P1705"  # later row won
