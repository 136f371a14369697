"""One verdict per answer: the classifier's kind and the breaker's class agree.

Reply texts are the providers' own, as documented (sources beside each vector)."""

import pytest

from deliverability.breaker.rules import KIND_CLASSES, classify
from deliverability.classify import classify_answer

VECTORS = [
    # Outlook.com: "550 5.5.0 Requested action not taken: mailbox unavailable" is the
    # reply for a recipient that does not exist (learn.microsoft.com, Exchange Online
    # NDR 5.1.1/5.5.0 "RESOLVER.ADR.RecipNotFound" family; research section 8).
    ("microsoft_consumer", 550, "5.5.0 Requested action not taken: mailbox unavailable",
     "hard", "recipient_hard"),
    # Microsoft block list (S3150), research section 8.
    ("microsoft_consumer", 550, "5.7.1 Unfortunately, messages from [192.0.2.25] weren't sent. "
     "Please contact your Internet service provider since part of their network is on our "
     "block list (S3150).", "block", "block"),
    # Google, support.google.com/mail/answer/3726730.
    ("google", 550, "5.1.1 The email account that you tried to reach does not exist.",
     "hard", "recipient_hard"),
    ("google", 421, "4.7.28 Our system has detected an unusual rate of unsolicited mail "
     "originating from your IP address.", "block", "throttle"),
    ("google", 452, "4.2.2 The email account that you tried to reach is over quota.",
     "soft", "recipient_soft"),
    # Yahoo Sender Hub "SMTP Error Codes".
    ("yahoo", 421, "4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to "
     "unexpected volume or user complaints", "block", "reputation"),
    # RFC 3463 alone: 5.1.1 is a bad destination mailbox; 4.4.1 no answer from host.
    ("", 550, "5.1.1 <a@example.org>: Recipient address rejected", "hard", "recipient_hard"),
    ("", 451, "4.4.1 Connection timed out", "soft", None),
    # greylisting (RFC 6647, Postgrey's text): retried, never a block against the provider
    ("", 450, "4.2.0 <reader@example.org>: Recipient address rejected: Greylisted, see "
     "http://postgrey.schweikert.ch/help/example.org.html", "soft", "transient"),
    # Postfix's 450 for an unknown local recipient (unknown_local_recipient_reject_code,
    # postconf(5)) is transient: retried, never a suppression on its own
    ("", 450, "4.1.1 <x@example.org>: Recipient address rejected: User unknown in local "
     "recipient table", "soft", None),
]


@pytest.mark.parametrize(("provider", "code", "text", "kind", "klass"), VECTORS)
def test_one_verdict(provider, code, text, kind, klass):
    v = classify_answer(code, text, provider)
    assert v["kind"] == kind
    if klass:
        assert v["breaker_class"] == klass
    allowed = KIND_CLASSES.get(v["kind"])
    assert allowed is None or v["breaker_class"] in allowed
    # the breaker, told only the verdict's reason (as sending and the intake tell it),
    # reaches the same class
    assert classify(provider, code, text, reason=v["reason"]).klass == v["breaker_class"]
    # and asked with nothing, it asks the classifier: the same class again
    assert classify(provider, code, text).klass == v["breaker_class"]


def test_record_smtp_answers_returns_the_verdict(db):
    from deliverability.answers import SmtpAnswer, record_smtp_answers

    [result] = record_smtp_answers([SmtpAnswer(None, "gone@example.org", "microsoft_consumer",
                                               "bulk", "", 550,
                                               "5.5.0 Requested action not taken: mailbox "
                                               "unavailable")])
    assert (result["kind"], result["breaker_class"]) == ("hard", "recipient_hard")


# Structure before words (RFC 3463 section 3): a generic text cannot take a reply out of
# what its enhanced status says; a provider's documented text can.
STATUS_FIRST = [
    # X.1.1 bad destination mailbox: "filtered" words do not make it a block
    (550, "5.1.1 <reader@example.org>... message filtered", "hard", "userunknown"),
    # X.7.1 policy: "Recipient address rejected: Access denied" is Postfix's access(5)
    # REJECT (postfix.org/access.5.html), a policy verdict, never a bad address
    (554, "5.7.1 <reader@example.org>: Recipient address rejected: Access denied", "block",
     "blocked"),
    # X.1.8 bad sender's system address (Sendmail's own wording, srvrsmtp.c)
    (553, "5.1.8 <news@example.com>... Domain of sender address news@example.com does not "
     "exist", "block", "rejected"),
    # a named DNS blocklist (RFC 5782 2.1) or SPF failure (RFC 7208 8) is about the
    # sender under any status, also a misused 5.1.1: never a bad address
    (550, "5.1.1 Service unavailable; Client host [192.0.2.25] blocked using "
     "zen.spamhaus.org", "block", "blocked"),
    (550, "5.1.1 Message rejected: SPF check failed for example.com", "block", "authfailure"),
    # GoDaddy's documented IB508: an SPF refusal stated with 5.1.0 (x.1.0 is not bound)
    (550, "5.1.0 192.0.2.25 is not allowed to send from <example.com> per it's SPF Record. "
     "Please inspect your SPF settings, and try again. IB508", "block", "authfailure"),
    # Postfix's client restrictions name our host (postconf(5)): a block under any status,
    # and reject_unknown_client_hostname is the reverse DNS of our IP
    (550, "5.1.1 <reader@example.org>: Client host rejected: Access denied", "block",
     "blocked"),
    (450, "4.7.25 <unknown[192.0.2.25]>: Client host rejected: cannot find your hostname, "
     "[192.0.2.25]", "block", "requireptr"),
    # Postfix's HELO and sender restrictions name what they refused (postconf(5)): "Host
    # not found" there is our HELO name, never the recipient's domain
    (554, "<mail.example.com>: Helo command rejected: Host not found", "block", "blocked"),
    (550, "<news@example.com>: Sender address rejected: Domain not found", "block",
     "rejected"),
    # Microsoft documents both: 5.4.1 DBEB is a recipient not in the directory ...
    (550, "5.4.1 Recipient address rejected: Access denied. AS(201806281)", "hard",
     "userunknown"),
    # Exchange Online's own extended codes (its NDR reference)
    (550, "5.7.124 Sender not in allowed-senders list", "block", "filtered"),
    (550, "5.7.512 Access denied, message must be RFC 5322 section 3.6.2 compliant", "block",
     "notcompliantrfc"),
    (550, "5.4.300 Message expired", "soft", "expired"),
    # ... and 5.1.90 the sender's daily recipient limit (a block stated with 5.1.x)
    (550, "5.1.90 Your message can't be sent because you've reached your daily limit for "
     "message recipients.", "block", "ratelimited"),
]


@pytest.mark.parametrize(("code", "text", "kind", "reason"), STATUS_FIRST)
def test_status_before_words(code, text, kind, reason):
    from deliverability.classify import classify_reply

    r = classify_reply(code, text)
    assert (r["kind"], r["reason"]) == (kind, reason)


def _dsn(status: str, diagnostic: str) -> bytes:
    """A minimal RFC 3464 report (sections 2.2-2.3) with one recipient."""
    return (
        "From: MAILER-DAEMON@mx.example.net\nTo: bounces@news.example.com\n"
        "Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\n\n'
        "--b\nContent-Type: text/plain\n\nDelivery failed.\n\n"
        "--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
        f"Final-Recipient: rfc822; reader@example.org\nAction: failed\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {diagnostic}\n\n--b--\n").encode()


@pytest.mark.parametrize(("status", "diagnostic", "kind"), [
    # the remote's own 5.7.1 outranks the reporting MTA's 5.1.1 (RFC 3464 2.3.4)
    ("5.1.1", "550 5.7.1 Service unavailable, client host 192.0.2.25 blocked", "block"),
    # the remote's own 5.1.1 bounds the text: "rejected" words do not make a block
    ("5.0.0", "550 5.1.1 <reader@example.org>: Recipient rejected", "hard"),
    # only the DSN's status, no reply at all: it bounds the text
    ("5.1.1", "mailbox rejected by filter", "hard"),
])
def test_remote_status_outranks_the_report(status, diagnostic, kind):
    from deliverability.classify import classify_message

    [r] = classify_message(_dsn(status, diagnostic))
    assert r["kind"] == kind


def test_classify_bounce_command_prints_the_breaker_class(tmp_path):
    """``manage.py classify_bounce`` (DESIGN.md contract) prints each result with the
    breaker's class from the same verdict; a missing file is its own line."""
    import io
    import json
    from pathlib import Path

    from django.core.management import call_command

    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"
    out = io.StringIO()
    call_command("classify_bounce", str(fixtures / "microsoft_s3150_block.eml"),
                 str(tmp_path / "missing.eml"), stdout=out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    [r] = first["results"]
    assert (r["kind"], r["reason"], r["breaker_class"]) == ("block", "blocked", "block")
    assert second["error"] and second["results"][0]["kind"] == "unknown"
