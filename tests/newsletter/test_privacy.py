"""Erasure reaches every table that holds the address, export shows all of it, and
addresses are compared by one normalisation everywhere."""

from __future__ import annotations

import zlib

import pytest
from django.apps import apps
from django.db import models
from django.utils import timezone

from config.addresses import address_normalise
from deliverability.classify import classify_reply
from deliverability.intake import ingest
from deliverability.models import BounceEvent, InboundMessage, Suppression
from deliverability.suppression import is_suppressed, normalise, suppress, suppressed_among
from newsletter.models import ConsentRecord, MailingList, Subscriber, Subscription
from newsletter.services import Client, subscription_create
from newsletter.services.privacy import subscriber_erase, subscriber_export_data
from newsletter.services.signup import SignupOutcome
from newsletter.validation import address_clean
from sending.models import Delivery, DeliveryAttempt, Mailing, TransactionalEmail
from tests.deliverability.intake_support import bounce_for

pytestmark = pytest.mark.django_db

ADDRESS = "nobody@example.org"  # the address the bounce fixture names


# --- one normalisation -----------------------------------------------------------

@pytest.mark.parametrize("spelling", ["Bob@example.org", "BOB@EXAMPLE.ORG", " bob@Example.org "])
def test_suppression_ignores_case_in_the_local_part_too(spelling):
    suppress(address="bob@example.org", reason="hard_bounce")
    assert is_suppressed(spelling)
    assert suppressed_among([spelling]) == {"bob@example.org"}


def test_a_suppressed_capitalised_address_blocks_every_spelling():
    suppress(address="Bob@Example.org", reason="complaint")
    assert Suppression.objects.get().address == "bob@example.org"
    assert is_suppressed("bob@example.org")


def test_every_part_uses_the_same_normalisation():
    for raw in ("Bob@Example.ORG", "joerg@Bücher.Example", "MiXeD.Case+tag@x.org"):
        expected = address_normalise(raw)
        assert normalise(raw) == expected
        assert address_clean(raw) == expected
    # The classifier reports recipients in lower case: the form suppression looks up.
    assert address_normalise("Bob@Example.org") == "bob@example.org"
    assert classify_reply(550, "5.1.1 <Bob@Example.org> user unknown")["kind"] == "hard"


def test_signup_with_another_spelling_of_a_suppressed_address_is_refused(mailing_list):
    suppress(address="bob@example.org", reason="hard_bounce")
    outcome = subscription_create(mailing_list=mailing_list, email="Bob@example.org",
                                  client=Client(ip="198.51.100.7"))
    assert outcome == SignupOutcome.SUPPRESSED
    assert not Subscriber.objects.exists()


def test_migrations_lower_case_stored_addresses():
    from importlib import import_module

    Suppression.objects.bulk_create([Suppression(address="Old@x.org", reason="manual"),
                                     Suppression(address="dup@x.org", reason="manual"),
                                     Suppression(address="DUP@x.org", reason="complaint")])
    Subscriber.objects.bulk_create([Subscriber(email="Ann@x.org"), Subscriber(email="Cy@x.org"),
                                    Subscriber(email="cy@x.org")])
    import_module("deliverability.migrations.0006_suppression_address_lower_case").lower_case(
        apps, None)
    import_module("newsletter.migrations.0006_subscriber_email_lower_case").lower_case(
        apps, None)
    assert sorted(Suppression.objects.values_list("address", "reason")) == [
        ("dup@x.org", "manual"), ("old@x.org", "manual")]
    assert sorted(Subscriber.objects.values_list("email", flat=True)) == [
        "Cy@x.org", "ann@x.org", "cy@x.org"]  # a collision keeps its spelling


# --- erase and export ------------------------------------------------------------

@pytest.fixture
def person(mailing_list):
    """Someone with a trail in every app: consent, a campaign mail with an SMTP answer,
    a bounce (raw message, event, suppression) and a confirmation mail."""
    subscription_create(mailing_list=mailing_list, email=ADDRESS, name="Nobody",
                        client=Client(ip="198.51.100.7", user_agent="Firefox"))
    subscription = Subscription.objects.get()
    subscription.status = "confirmed"
    subscription.save()
    mailing = Mailing.objects.create(
        reference="campaign:7", from_email="News <news@news.example.com>",
        subject_template="June", text_template="Hello", state=Mailing.State.SENDING)
    delivery = Delivery.objects.create(
        mailing=mailing, address=ADDRESS, subscription_id=subscription.id,
        state=Delivery.State.SENT, sent_at=timezone.now(),
        last_reply=f"250 2.0.0 Ok: queued for <{ADDRESS.upper()}>")
    DeliveryAttempt.objects.create(delivery=delivery, at=timezone.now(), code=250,
                                   text=f"2.0.0 <{ADDRESS}> accepted", outcome="sent")
    message = ingest(bounce_for("rfc3464_user_unknown", delivery), source="pipe")
    assert message.events.get().delivery_id == delivery.id
    assert TransactionalEmail.objects.filter(to=ADDRESS).exists()  # the confirmation
    return Subscriber.objects.get()


def _holders_of(text: str) -> list[str]:
    """Every stored field of every table that still contains ``text`` (any case)."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, models.CharField | models.TextField):
                rows = model.objects.filter(**{f"{field.name}__icontains": text})
                found += [f"{model._meta.label}.{field.name}"] * rows.count()
    for message in InboundMessage.objects.all():
        if text.encode() in zlib.decompress(bytes(message.raw_compressed or b"")
                                            ) if message.raw_compressed else False:
            found.append("InboundMessage.raw")
    return found


def test_the_admin_log_forgets_the_address(person, admin_user):
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    LogEntry.objects.create(
        user=admin_user, content_type=ContentType.objects.get_for_model(Subscriber),
        object_id=str(person.id), object_repr=str(person), action_flag=CHANGE,
        change_message=f"Changed email from {ADDRESS.upper()}")
    subscriber_erase(subscriber_id=person.id)
    assert _holders_of(ADDRESS) == []
    assert LogEntry.objects.get().object_repr == "[erased]"


def test_export_holds_everything_stored_about_the_person(person):
    data = subscriber_export_data(subscriber_id=person.id)
    assert data["email"] == ADDRESS
    (delivery,) = data["deliveries"]
    assert delivery["mailing"] == "campaign:7" and delivery["address"] == ADDRESS
    assert delivery["attempts"][0]["reply"] == f"2.0.0 <{ADDRESS}> accepted"
    (event,) = data["bounce_events"]
    assert (event["kind"], event["reason"], event["status"]) == ("hard", "userunknown", "5.1.1")
    assert ADDRESS in event["message"]["raw"]
    assert data["suppression"]["reason"] == "hard_bounce"
    assert [m["purpose"] for m in data["transactional_mails"]] == ["confirmation"]
    assert data["consent_records"][0]["ip"] == "198.51.100.7"


def test_erase_leaves_the_address_nowhere_and_keeps_it_suppressed(person, mailing_list):
    assert _holders_of(ADDRESS)  # the trail exists before
    event_id = BounceEvent.objects.get().id
    assert subscriber_erase(subscriber_id=person.id) is True
    assert _holders_of(ADDRESS) == []
    assert _holders_of("nobody@") == []
    # Kept: the suppression (hashed, with the bounce's reason), the event's classification,
    # the delivery's state for the mailing's and the provider's figures.
    entry = Suppression.objects.get()
    assert entry.address.startswith("sha256:") and entry.reason == "hard_bounce"
    assert entry.source_event_id == event_id
    event = BounceEvent.objects.get()
    assert (event.kind, event.reason, event.recipient, event.address) == (
        "hard", "userunknown", "", "")
    delivery = Delivery.objects.get()
    assert delivery.state == "sent" and delivery.address.endswith("@erased.invalid")
    assert InboundMessage.objects.get().raw == b""
    assert not TransactionalEmail.objects.exists()
    assert ConsentRecord.objects.filter(event="erase").exists()
    # Still suppressed for every spelling; a signup or an import does not bring it back.
    assert is_suppressed(ADDRESS.upper()) and suppressed_among([ADDRESS]) == {ADDRESS}
    assert subscription_create(mailing_list=mailing_list, email=ADDRESS.title(),
                               client=Client(ip="198.51.100.8")) == SignupOutcome.SUPPRESSED


def test_erase_cancels_mail_not_sent_yet(person):
    later = Mailing.objects.create(reference="campaign:8", from_email="n@news.example.com",
                                   subject_template="July", text_template="Hi")
    queued = Delivery.objects.create(mailing=later, address=ADDRESS, state="queued")
    subscriber_erase(subscriber_id=person.id)
    queued.refresh_from_db()
    assert queued.state == "cancelled" and queued.address.endswith("@erased.invalid")


def test_erasing_someone_never_suppressed_suppresses_by_hash(mailing_list):
    subscription_create(mailing_list=mailing_list, email="cy@example.org",
                        client=Client(ip="198.51.100.7"))
    subscriber_erase(subscriber_id=Subscriber.objects.get().id)
    entry = Suppression.objects.get()
    assert entry.reason == "erased" and "cy@" not in entry.address
    assert is_suppressed("Cy@example.org")


def test_erase_leaves_other_people_alone(person, mailing_list):
    other_list = MailingList.objects.create(name="Other", slug="other")
    subscription_create(mailing_list=other_list, email="ann@example.org",
                        client=Client(ip="198.51.100.9"))
    mailing = Mailing.objects.get()
    Delivery.objects.create(mailing=mailing, address="ann@example.org",
                            state=Delivery.State.SENT, last_reply="250 ok")
    subscriber_erase(subscriber_id=person.id)
    assert Subscriber.objects.get().email == "ann@example.org"
    assert Delivery.objects.filter(address="ann@example.org").exists()
    assert TransactionalEmail.objects.filter(to="ann@example.org").exists()
    assert not is_suppressed("ann@example.org")


def test_erase_removes_the_address_from_stored_import_files(person, mailing_list, settings,
                                                            tmp_path):
    from django.core.files.base import ContentFile

    from newsletter.models import SubscriberImport

    settings.MEDIA_ROOT = tmp_path / "media"
    upload = ("E-Mail;Vorname\r\nann@example.org;Ann\r\n"
              f"{ADDRESS.upper()};Zoë „Z“\r\nbea@example.org;Bea\r\n").encode("cp1252")
    report = f"line,email,reason\r\n3,{ADDRESS},suppressed address\r\n4,x@,invalid\r\n"
    row = SubscriberImport(mailing_list=mailing_list, encoding="cp1252")
    row.file.save("kunden.csv", ContentFile(upload), save=False)
    row.report.save("report.csv", ContentFile(report.encode()), save=False)
    row.save()
    subscriber_erase(subscriber_id=person.id)
    kept = row.file.open("rb").read().decode("cp1252")
    assert kept == "E-Mail;Vorname\r\nann@example.org;Ann\r\nbea@example.org;Bea\r\n"
    assert row.report.open("rb").read() == b"line,email,reason\r\n4,x@,invalid\r\n"
    assert not [p.name for p in (tmp_path / "media").rglob(".erase-*")]
