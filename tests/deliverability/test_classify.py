"""Table-driven tests of deliverability.classify from the project's own fixtures.

Each fixture names its source in its X-Fixture-Source header (RFCs, and provider
reply texts quoted in ../shared/research/deliverability.md sections 7-8).
"""

from pathlib import Path

import pytest

from deliverability.classify import classify_message, classify_reply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bounces"

# file: [(recipient, kind, reason, hard, status)]
MESSAGES = {
    "rfc3464_user_unknown.eml": [("nobody@example.org", "hard", "userunknown", True, "5.1.1")],
    "rfc3464_two_recipients.eml": [("full.box@example.org", "soft", "mailboxfull", False, "5.2.2"),
                                   ("slow@example.net", "soft", "expired", False, "4.4.7")],
    "microsoft_s3150_block.eml": [("reader@hotmail.com", "block", "blocked", False, "5.7.1")],
    "microsoft_57515_auth.eml": [("reader@outlook.com", "block", "authfailure", False, "5.7.515")],
    "swisscom_block.eml": [("kunde@bluewin.ch", "block", "blocked", False, "5.0.0")],
    "tonline_nowl.eml": [("leser@t-online.de", "block", "badreputation", False, "5.0.0")],
    "gmail_42128_rate.eml": [("reader@gmail.com", "block", "speeding", False, "4.7.28")],
    "gmail_55726_dmarc.eml": [("reader@gmail.com", "block", "authfailure", False, "5.7.26")],
    "qmail_yahoo_tss04.eml": [("reader@yahoo.com", "block", "badreputation", False, "4.7.0")],
    "exim_user_unknown.eml": [("gone@example.org", "hard", "userunknown", True, "5.1.1")],
    # the notice's own reason outranks the "550 user unknown" it quotes: not suppressed
    "kddi_ezweb_account_disabled.eml": [("reader@ezweb.ne.jp", "soft", "suspend", False,
                                         "5.0.0")],
    "arf_abuse_rfc5965.eml": [("", "complaint", "feedback", False, "")],
    "arf_optout_rcpt.eml": [("subscriber@example.net", "complaint", "feedback", False, "")],
    "rfc3834_vacation.eml": [("ada@example.org", "auto_reply", "vacation", False, "")],
    "sendmail_v5_transcript.eml": [("reader@example.org", "block", "norelaying", False, ""),
                                   ("someone@example.net", "hard", "hostunknown", True, "")],
    "notes_reason_above_address.eml": [("reader@example.org", "hard", "userunknown", True, "")],
    "forwarded_sendmail_bounce.eml": [("gone@example.org", "hard", "userunknown", True, "5.1.1")],
    "powermta_bad_mailbox.eml": [("reader@example.org", "hard", "userunknown", True, "5.0.0")],
    "not_a_bounce.eml": [],
    "sendmail_xunix_mailer.eml": [("reader@example.net", "soft", "mailererror", False, "5.0.0")],
    "sendmail_warning_delayed.eml": [("reader@example.org", "soft", "expired", False, "")],
    "qmail_no_code_final.eml": [("reader@example.org", "hard", "userunknown", True, "")],
    # RFC 3464 section 2.3 groups read as notice text (indented boundary): each
    # recipient keeps its own reason, none inherits the "host name lookup failure"
    "rfc3464_indented_boundary_three.eml": [
        ("strict@example.com", "block", "policyviolation", False, "5.7.1"),
        ("left.us@example.org", "hard", "userunknown", True, "5.1.1"),
        ("reader@unresolved.example.net", "soft", "networkerror", False, "4.4.3")],
    # several feedback reports in one message (RFC 5965), every Feedback-Type kept
    "arf_three_reports_digest.eml": [
        ("first.reader@example.net", "complaint", "feedback", False, ""),
        ("second.reader@example.net", "complaint", "feedback", False, ""),
        ("third.reader@example.org", "complaint", "feedback", False, "")],
    "arf_two_parts_not_spam.eml": [
        ("kept@example.net", "complaint", "feedback", False, ""),
        ("also.kept@example.net", "complaint", "feedback", False, ""),
        ("hidden.reader@example.org", "complaint", "feedback", False, "")],
    "arf_fields_in_text_plain.eml": [
        ("plain.reporter@example.net", "complaint", "feedback", False, "")],
    # RFC 3464 actions: delivered/relayed/expanded are no failure, delayed never final
    "rfc3464_delivered_and_failed.eml": [
        ("arrived@example.net", "delivered", "delivered", False, "2.0.0"),
        ("gone@example.net", "hard", "userunknown", True, "5.1.1")],
    "rfc3464_relayed_expanded_delayed.eml": [
        ("relayed@example.org", "delivered", "delivered", False, "2.0.0"),
        ("list@example.org", "delivered", "delivered", False, "2.0.0"),
        ("slow@example.com", "soft", "expired", False, "4.4.1"),
        ("not.yet@example.com", "soft", "expired", False, "4.1.1")],
    # RFC 3834 auto-replies in English, German and French
    "rfc3834_vacation_en_leave.eml": [("grace@example.org", "auto_reply", "vacation", False, "")],
    "rfc3834_vacation_de.eml": [("hanna@example.net", "auto_reply", "vacation", False, "")],
    "rfc3834_vacation_fr.eml": [("camille@example.com", "auto_reply", "vacation", False, "")],
    # vendor layouts, each read by its own parser (deliverability/bounces/layouts)
    "dma_rcpt_mailbox_unavailable.eml": [("gone.box@example.org", "hard", "userunknown", True,
                                          "")],
    "messagingserver_text_only.eml": [("reader@example.net", "hard", "userunknown", True, "")],
    "imail_unknown_user.eml": [("gone.reader@example.org", "hard", "userunknown", True, "")],
    "interscan_rcpt_transcript.eml": [("gone@example.jp", "hard", "userunknown", True, "")],
    "surfcontrol_no_such_user.eml": [("nobody@example.com", "hard", "userunknown", True, "")],
    "verizon_no_valid_recipients.eml": [("5550100@vzwpix.com", "hard", "userunknown", True, "")],
    "fml_not_member.eml": [("readers@lists.example.org", "block", "rejected", False, "")],
    "exim_two_failed_one_without_code.eml": [
        ("quiet@example.org", "soft", "suspend", False, ""),
        ("gone@example.net", "hard", "userunknown", True, "5.1.1")],
}

KEYS = {"recipient", "kind", "reason", "status", "smtp_code", "hard", "diagnostic", "remote_mta",
        "provider"}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_fixture(name):
    results = classify_message((FIXTURES / name).read_bytes())
    got = [(r["recipient"], r["kind"], r["reason"], r["hard"], r["status"]) for r in results]
    assert got == MESSAGES[name]
    for r in results:
        assert KEYS <= set(r)


def test_every_fixture_is_in_the_table():
    assert {p.name for p in FIXTURES.glob("*.eml")} == set(MESSAGES)


def test_feedback_types_kept_per_report():
    results = classify_message((FIXTURES / "arf_three_reports_digest.eml").read_bytes())
    assert [r["feedback_type"] for r in results] == ["abuse", "fraud", "virus"]
    # each report keeps its own reported message's Return-Path (our VERP address)
    assert [r["reported_return_path"] for r in results] == [
        "bounces+d1x@news.example.com", "bounces+d2x@news.example.com",
        "bounces+d3x@news.example.com"]
    results = classify_message((FIXTURES / "arf_two_parts_not_spam.eml").read_bytes())
    assert [r["feedback_type"] for r in results] == ["not-spam", "not-spam", "other"]


def test_delay_notice_is_never_hard():
    results = classify_message((FIXTURES / "rfc3464_relayed_expanded_delayed.eml").read_bytes())
    assert [r["action"] for r in results] == ["relayed", "expanded", "delayed", "delayed"]
    assert not any(r["hard"] for r in results)


@pytest.mark.parametrize(("name", "layout"), [
    ("dma_rcpt_mailbox_unavailable.eml", "dma"), ("messagingserver_text_only.eml",
                                                  "messagingserver"),
    ("imail_unknown_user.eml", "imail"), ("interscan_rcpt_transcript.eml", "interscan"),
    ("surfcontrol_no_such_user.eml", "surfcontrol"),
    ("verizon_no_valid_recipients.eml", "verizon"), ("fml_not_member.eml", "fml")])
def test_vendor_layout_reads_its_own_format(name, layout):
    from deliverability.bounces import extract

    assert extract.read((FIXTURES / name).read_bytes()).form == f"layout:{layout}"


def test_messaging_server_keeps_the_original_address():
    [r] = classify_message((FIXTURES / "messagingserver_text_only.eml").read_bytes())
    assert r["original_recipient"] == "alias.reader@example.net"


def test_original_recipient_kept_when_it_differs():
    r = classify_message((FIXTURES / "rfc3464_two_recipients.eml").read_bytes())[0]
    assert r["original_recipient"] == "alias@example.org"


# Several recipients whose blocks cannot be told apart by MIME or DSN structure (RFC
# 3464 section 2.3 groups that land in the notice text, a plain-text report): the
# notice is read per recipient, cut where the next recipient's block begins.
@pytest.mark.parametrize(("name", "own"), [
    ("rfc3464_indented_boundary_three.eml", {
        "strict@example.com": ("550", "rejected by policy"),
        "left.us@example.org": ("550", "user unknown"),
        "reader@unresolved.example.net": ("", "host name lookup failure")}),
    ("exim_two_failed_one_without_code.eml", {
        "quiet@example.org": ("", "mailbox is inactive"),
        "gone@example.net": ("550", "user unknown")}),
])
def test_recipient_never_takes_another_recipients_diagnostic(name, own):
    results = classify_message((FIXTURES / name).read_bytes())
    assert {r["recipient"] for r in results} == set(own)
    for r in results:
        code, words = own[r["recipient"]]
        diag = r["diagnostic"].lower()
        assert r["smtp_code"] == code
        assert words in diag
        for other, (_, theirs) in own.items():
            if other != r["recipient"]:
                assert theirs not in diag and other not in diag


def test_feedback_type_reported():
    r = classify_message((FIXTURES / "arf_optout_rcpt.eml").read_bytes())[0]
    assert r["feedback_type"] == "opt-out"


# Synchronous replies: (code, text, kind, reason). Texts are the providers' own words,
# quoted in research deliverability.md sections 7-8 (and DESIGN.md for Swisscom).
REPLIES = [
    (550, "5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. Please contact your "
          "Internet service provider since part of their network is on our block list (S3150).",
     "block", "blocked"),
    (554, "mxbw.bluewin.ch ESMTP Swisscom AG IP: 94.130.34.42, You are not allowed to send us mail",
     "block", "blocked"),
    (421, "4.7.28 Gmail has detected an unusual rate of mail originating from your IP address. "
          "gsmtp", "block", "speeding"),
    (550, "5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC "
          "policy. gsmtp", "block", "authfailure"),
    (550, "5.7.25 The IP address sending this message does not have a PTR record setup. gsmtp",
     "block", "requireptr"),
    (553, "5.7.2 [TSS09] All messages from 198.51.100.7 will be permanently deferred; Retrying "
          "will NOT succeed.", "block", "blocked"),
    (554, "Message not allowed - [PH01] Email not accepted for policy reasons.",
     "block", "policyviolation"),
    (451, "4.7.650 The mail server [198.51.100.7] has been temporarily rate limited due to IP "
          "reputation.", "block", "badreputation"),
    (550, "5.7.1 Client host blocked for spamming issues. OFR006_102 Ref http://csi.cloudmark.com",
     "block", "blocked"),
    (554, "IP address is block listed. For explanation visit https://postmaster.gmx.net/en/case",
     "block", "blocked"),
    (550, "5.1.1 The email account that you tried to reach does not exist. gsmtp",
     "hard", "userunknown"),
    (452, "4.2.2 The email account that you tried to reach is over quota. gsmtp",
     "soft", "mailboxfull"),
    (550, "5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
     "hard", "userunknown"),
    (250, "2.0.0 OK 1717171717 gsmtp", "delivered", "delivered"),
]


@pytest.mark.parametrize(("code", "text", "kind", "reason"), REPLIES)
def test_reply(code, text, kind, reason):
    r = classify_reply(code, text, command="RCPT")
    assert (r["kind"], r["reason"]) == (kind, reason)
    if kind == "block":
        assert r["hard"] is False


@pytest.mark.parametrize("command", ["MAIL", "HELO", "CONN"])
def test_sender_stage_refusal_is_never_hard(command):
    r = classify_reply(550, "5.1.1 sender domain example.com does not exist", command=command)
    assert r["hard"] is False and r["kind"] == "block"


def test_user_unknown_without_rcpt_evidence_is_not_hard():
    # said after DATA, the refusal is a filter's verdict, not proof the address is bad
    r = classify_reply(550, "User unknown", command="DATA")
    assert r["hard"] is False


def test_provider_hint_enables_provider_rules():
    r = classify_reply(421, "RP-001 (COL004-MC1F39) Unfortunately, some messages from "
                            "198.51.100.7 weren't sent.", provider="microsoft")
    assert r["reason"] == "speeding" and r["provider"] == "microsoft"


def test_transcript_failure_reply_beats_earlier_positive_replies():
    from deliverability.bounces import textscan
    text = "Out: 250 2.1.5 Ok In: DATA Out: 354 End data Out: 451 4.3.0 Error: queue file"
    assert textscan.reply_code(text) == ("451", "4.3.0")
    assert textscan.reply_code("250 2.0.0 Ok") == ("250", "2.0.0")


def test_ehlo_keyword_starttls_is_not_a_tls_failure():
    r = classify_reply("451", "250-STARTTLS 250 CHUNKING 451 4.3.0 Error: queue file write error")
    assert r["reason"] == "systemerror"


@pytest.mark.parametrize("text, reason", [
    # Amazon SES developer guide: sending from an unverified identity
    ("554 Message rejected: Email address is not verified. The following identities failed "
     "the check in region EU-WEST-1: news@example.com", "norelaying"),
    ("554 email rejected due to security policies", "policyviolation"),
])
def test_published_reply_texts(text, reason):
    assert classify_reply("554", text)["reason"] == reason


# Without a status or reply code, permanence comes from the notice: a delay warning is
# temporary, a returned message is final (the MTA gave up).
@pytest.mark.parametrize(("name", "permanent"), [
    ("sendmail_warning_delayed.eml", False),
    ("qmail_no_code_final.eml", True),
    ("rfc3464_two_recipients.eml", True),  # first group: Status 5.2.2
])
def test_permanent_without_codes(name, permanent):
    r = classify_message((FIXTURES / name).read_bytes())[0]
    assert r["permanent"] is permanent


# Provider and MTA texts (source in the comment of each row): (code, text, command,
# provider, kind, reason).
VENDOR_REPLIES = [
    # Cox postmaster "Email error codes": AUP#CDRBL = IP temporarily blocked for spam-like
    # behaviour; wrapped in Cox's generic "sender rejected" wording, at MAIL FROM.
    (550, "5.1.0 <news@example.com> sender rejected. Refer to Error Codes section at "
          "https://www.cox.com/residential/support/email-error-codes.html for more "
          "information. AUP#CDRBL", "MAIL", None, "block", "blocked"),
    (554, "AUP#CXDNS rejected - no rDNS", "CONN", None, "block", "requireptr"),
    (550, "AUP#CXSNDR sender domain failed SPF/DKIM", "MAIL", None, "block", "authfailure"),
    # Spectrum "Understanding email error codes": 1300-1340 connection limits, 1350-1490
    # volume limits, 1000 IP blocked.
    (550, "5.1.0 <news@example.com> sender rejected. Please see https://www.spectrum.net/"
          "support/internet/understanding-email-error-codes for more information. "
          "AUP#In-1310", "MAIL", None, "block", "toomanyconn"),
    (554, "AUP#I-1000 Your IP address has been blocked", "CONN", None, "block", "blocked"),
    (452, "AUP#I-1450 too many messages", "RCPT", None, "block", "speeding"),
    # Mimecast SMTP error codes: 554 "Email rejected due to security policies" is the
    # anti-virus / signature rejection (MCSpamSignature, ...).
    (554, "email rejected due to security policies - MCSpamSignature.sa.2.2", "DATA",
     "mimecast", "block", "virusdetected"),
    (550, "Rejected by header-based Anti-Spoofing policy: news@example.com", "DATA",
     "mimecast", "block", "policyviolation"),
    (550, "envelope blocked - User Entry - https://community.mimecast.com", "RCPT",
     "mimecast", "block", "rejected"),
    # NTT docomo: "550 Unknown user" after DATA is the recipient's reception filter.
    (550, "Unknown user reader@docomo.ne.jp", "DATA", "nttdocomo", "block", "rejected"),
    (550, "Unknown user reader@docomo.ne.jp", "RCPT", "nttdocomo", "hard", "userunknown"),
    # cPanel Exim, dnslookup router cannot_route_message (domain does not resolve).
    (None, "The mail server could not deliver mail to reader@example.org. The account or "
           "domain may not exist, they may be blacklisted, or missing the proper dns entries.",
     "", None, "hard", "hostunknown"),
    # cPanel Exim ACL on a blacklisted envelope address: about the sender, not our IP.
    (550, '"Sorry, you are sending to/from an address that has been blacklisted"', "",
     None, "block", "rejected"),
    # RFC 5321 4.2.3 default text of 554, answering MAIL FROM: nothing about the sender.
    (554, "Transaction failed", "MAIL", None, "soft", "systemerror"),
    # sisimai PolicyViolation phrases: a "header error" is the site's policy, not media.
    (554, "5.7.9 Header error", "DATA", None, "block", "policyviolation"),
]


@pytest.mark.parametrize(("code", "text", "command", "provider", "kind", "reason"),
                         VENDOR_REPLIES)
def test_vendor_reply(code, text, command, provider, kind, reason):
    r = classify_reply(code, text, command=command, provider=provider)
    assert (r["kind"], r["reason"]) == (kind, reason)
    if kind == "block":
        assert r["hard"] is False


def test_addresses_listed_over_one_reason_share_it():
    """A plain-text notice that lists recipients and then one reason below the list:
    an address with nothing of its own takes the reason written under it (and a
    recipient with its own text keeps that, see the test above)."""
    raw = (b"From: MAILER-DAEMON@mx.example.net\r\nTo: bounces+d1@news.example.com\r\n"
           b"Subject: Undeliverable mail\r\n\r\n"
           b"Your message could not be delivered to these recipients:\r\n\r\n"
           b"  first@example.org\r\n"
           b"  second@example.org\r\n"
           b"    550 5.1.1 Recipient address rejected: User unknown in local recipient table\r\n")
    results = {r["recipient"]: r for r in classify_message(raw)}
    assert set(results) == {"first@example.org", "second@example.org"}
    for r in results.values():
        assert (r["kind"], r["reason"], r["smtp_code"]) == ("hard", "userunknown", "550")


def test_unmarked_out_of_office_from_a_no_reply_sender_is_an_auto_reply():
    """RFC 3834 section 3.1.7: responders should send from their own address; some send
    from a no-reply one without Auto-Submitted. An out-of-office subject and text still
    make it an auto-reply, never a bounce (Outlook's "Automatic reply:" layout)."""
    raw = (b"From: Sales Team <no-reply@example.org>\nTo: news@example.com\n"
           b"Subject: Automatic reply: June newsletter\n\n"
           b"I am out of the office until Monday and will reply on my return.\n")
    assert [(r["recipient"], r["kind"]) for r in classify_message(raw)] == [
        ("no-reply@example.org", "auto_reply")]
