"""Signup and double opt-in through the public pages."""

from __future__ import annotations

import pytest

from deliverability.suppression import suppress
from newsletter import conf
from newsletter.models import ConsentRecord, ConsentText, Subscriber, Subscription
from tests.newsletter.helpers import confirmation_mails, link_path

pytestmark = pytest.mark.django_db


def test_signup_records_pending_subscription_with_consent_proof(signup_post, mailing_list):
    response = signup_post(email="Ann.Smith@EXAMPLE.org", name="Ann")
    assert response.status_code == 302
    assert response["Location"] == "/s/shop-news/check-inbox/"
    subscriber = Subscriber.objects.get()
    assert subscriber.email == "ann.smith@example.org"  # config.addresses: lower case
    subscription = Subscription.objects.get()
    assert subscription.status == Subscription.Status.PENDING
    record = ConsentRecord.objects.get()
    assert (record.event, record.source) == ("signup", "form")
    assert record.ip == "198.51.100.7"
    assert record.user_agent == "Mozilla/5.0 (test)"
    assert record.consent_text.text == mailing_list.consent_text
    assert record.address == "ann.smith@example.org"


def test_idn_domain_is_stored_in_punycode(signup_post):
    assert signup_post(email="joerg@Bücher.Example").status_code == 302
    assert Subscriber.objects.get().email == "joerg@xn--bcher-kva.example"


def test_non_ascii_local_part_is_refused_with_a_clear_error(signup_post):
    response = signup_post(email="jörg@example.org")
    assert response.status_code == 400
    assert response.context["form"].errors["email"] == ["Enter a valid e-mail address."]
    assert not Subscriber.objects.exists()


def test_confirmation_mail_holds_link_and_nothing_the_signer_typed(signup_post):
    signup_post(email="ann@example.org", name="Buy cheap pills at spam.example")
    mail = confirmation_mails().get()
    assert mail.to == "ann@example.org"
    assert "Shop News" in mail.subject
    assert "/confirm/" in mail.body_text and "/confirm/" in mail.body_html
    for part in (mail.subject, mail.body_text, mail.body_html):
        assert "pills" not in part and "spam.example" not in part
    assert mail.from_email == "news@shop.example"


def test_get_of_confirm_link_confirms_nothing(signup_post, client):
    signup_post()
    path = link_path(confirmation_mails().get().body_text, "/confirm/")
    for _ in range(3):  # mail scanners fetch links, sometimes more than once
        page = client.get(path)
        assert page.status_code == 200
        assert b"<form method=\"post\">" in page.content
    assert Subscription.objects.get().status == "pending"
    assert not ConsentRecord.objects.filter(event="confirmation").exists()


def test_post_of_confirm_link_confirms_and_twice_is_harmless(signup_post, client):
    signup_post()
    path = link_path(confirmation_mails().get().body_text, "/confirm/")
    page = client.get(path)
    token = str(page.context["csrf_token"])
    first = client.post(path, {"csrfmiddlewaretoken": token}, REMOTE_ADDR="203.0.113.9")
    assert first.status_code == 200
    assert first.context["outcome"] == "confirmed"
    second = client.post(path, {"csrfmiddlewaretoken": token})
    assert second.status_code == 200
    assert second.context["outcome"] == "already_confirmed"
    subscription = Subscription.objects.get()
    assert subscription.status == "confirmed" and subscription.confirmed_at
    confirmations = ConsentRecord.objects.filter(event="confirmation")
    assert confirmations.count() == 1
    assert confirmations.get().ip == "203.0.113.9"
    assert confirmations.get().consent_text_id == ConsentRecord.objects.get(
        event="signup").consent_text_id


def test_confirm_post_without_csrf_token_is_refused(signup_post, client):
    signup_post()
    path = link_path(confirmation_mails().get().body_text, "/confirm/")
    assert client.post(path).status_code == 403
    assert Subscription.objects.get().status == "pending"


def test_thousand_signups_for_one_address_send_at_most_three_mails(
        signup_post, monkeypatch, smtp_sink):
    from sending.sink import sink_messages
    from sending.transactional import transactional_email_deliver

    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_IP", 100_000)
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_NETWORK", 100_000)
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_ADDRESS", 100_000)
    answers = set()
    for i in range(1000):
        response = signup_post(email="victim@example.org", ip=f"10.0.{i // 250}.{i % 250}")
        answers.add((response.status_code, response["Location"]))
    assert answers == {(302, "/s/shop-news/check-inbox/")}  # the same answer every time
    mails = list(confirmation_mails("victim@example.org"))
    assert len(mails) == 3
    for mail in mails:
        transactional_email_deliver(mail.id)
    assert len(sink_messages(smtp_sink.directory)) == 3


def test_signups_for_one_address_beyond_its_limit_do_nothing(signup_post, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_ADDRESS", 5)
    for i in range(20):
        assert signup_post(email="x@example.org", ip=f"10.1.0.{i}").status_code == 302
    assert ConsentRecord.objects.count() == 5


def test_too_many_signups_from_one_ip_get_try_later_page(signup_post, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_IP", 3)
    codes = [signup_post(email=f"p{i}@example.org").status_code for i in range(5)]
    assert codes == [302, 302, 302, 429, 429]
    assert Subscriber.objects.count() == 3
    # another client is not affected
    assert signup_post(email="other@example.org", ip="192.0.2.44").status_code == 302


def test_too_many_signups_for_one_list_get_try_later_page(signup_post, monkeypatch):
    monkeypatch.setattr(conf, "SIGNUP_RATE_PER_LIST", 2)
    codes = [signup_post(email=f"p{i}@example.org", ip=f"10.2.0.{i}").status_code
             for i in range(3)]
    assert codes == [302, 302, 429]


def test_honeypot_gets_normal_answer_and_nothing_is_stored(signup_post):
    response = signup_post(website="http://spam.example")
    assert response.status_code == 302
    assert not Subscriber.objects.exists() and not confirmation_mails().exists()


def test_suppressed_address_gets_normal_answer_and_no_mail(signup_post):
    suppress(address="gone@example.org", reason="hard_bounce")
    response = signup_post(email="gone@EXAMPLE.org")
    assert response.status_code == 302
    assert response["Location"] == "/s/shop-news/check-inbox/"
    assert not confirmation_mails().exists()
    assert not Subscription.objects.exists()


def test_signup_of_confirmed_subscriber_changes_nothing_and_sends_nothing(
        signup_post, mailing_list):
    subscriber = Subscriber.objects.create(email="ann@example.org", name="Ann")
    Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                status="confirmed")
    response = signup_post(email="ann@example.org", name="Mallory")
    assert response.status_code == 302
    assert not confirmation_mails().exists()
    subscriber.refresh_from_db()
    assert subscriber.name == "Ann"  # a stranger cannot rename a subscriber


def test_unsubscribed_person_signing_up_again_must_confirm_again(signup_post, mailing_list):
    subscriber = Subscriber.objects.create(email="ann@example.org")
    Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                status="unsubscribed")
    signup_post(email="ann@example.org")
    assert Subscription.objects.get().status == "pending"
    assert ConsentRecord.objects.get().event == "resubscribe"
    assert confirmation_mails().count() == 1


def test_list_without_double_opt_in_subscribes_at_once(signup_post, mailing_list):
    mailing_list.double_opt_in = False
    mailing_list.save()
    signup_post()
    assert Subscription.objects.get().status == "confirmed"
    assert not confirmation_mails().exists()


def test_consent_record_points_to_the_text_version_that_was_shown(
        client, signup_post, mailing_list):
    page = client.get("/s/shop-news/")
    shown = page.context["consent"]
    mailing_list.consent_text = "A new text, edited while the visitor was reading."
    mailing_list.save()
    signup_post(consent_version=shown.id)  # signup_post fetches the page again first
    record = ConsentRecord.objects.get()
    assert record.consent_text_id == shown.id
    assert record.consent_text.text != mailing_list.consent_text
    assert ConsentText.objects.filter(mailing_list=mailing_list).count() == 2
    assert set(ConsentText.objects.values_list("version", flat=True)) == {1, 2}


def test_signup_page_is_refused_for_unknown_or_private_list(client, mailing_list):
    assert client.get("/s/nope/").status_code == 404
    mailing_list.public = False
    mailing_list.save()
    assert client.get("/s/shop-news/").status_code == 404


def test_signup_without_consent_tick_is_refused(signup_post):
    response = signup_post(consent="")
    assert response.status_code == 400
    assert "consent" in response.context["form"].errors
    assert not Subscriber.objects.exists()


def test_embedded_form_works_without_csrf_token(client, mailing_list):
    response = client.post("/s/shop-news/subscribe/", {"email": "emb@example.org",
                                                       "consent": "on"},
                           REMOTE_ADDR="198.51.100.20")
    assert response.status_code == 302
    assert ConsentRecord.objects.get().source == "embed"


def test_pages_need_no_javascript_and_label_every_field(client, mailing_list):
    page = client.get("/s/shop-news/").content.decode()
    assert "<script" not in page
    for field in ("id_email", "id_name", "id_consent"):
        assert f'for="{field}"' in page and f'id="{field}"' in page
    assert 'name="viewport"' in page
    assert 'aria-hidden="true"' in page  # the honeypot is hidden from screen readers


def test_signup_page_is_translated(client, mailing_list):
    page = client.get("/s/shop-news/", HTTP_ACCEPT_LANGUAGE="de")
    assert 'lang="de"' in page.content.decode()
    assert "Abonnieren" in page.content.decode()
