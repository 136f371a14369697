"""Recipients read from plain-text notices (no RFC 3464 part, no X-Failed-Recipients).

Hand-written notices in the layouts MTAs use for plain bounces: Exchange 2000/2003
SMTPSVC ("The following recipient(s) could not be reached:"), Yahoo's old qmail-based
notice ("Remote host said: ... [RCPT_TO]"), Sendmail's transcript (">>> RCPT To:<x>"),
and "simple" notices with Recipient:/Delivery to:/Failed Recipient: fields. Addresses
are RFC 2606 names."""

import pytest

from deliverability.classify import classify_message

NOTICES = {
    "smtpsvc_not_reached": (
        'From: System Administrator <postmaster@mail.example.org>\n'
        'To: news@example.com\n'
        'Subject: Undeliverable: June newsletter\n'
        '\n'
        'Your message did not reach some or all of the intended recipients.\n'
        '\n'
        '      Subject:\tJune newsletter\n'
        '      Sent:\t3/9/2025 6:00 AM\n'
        '\n'
        'The following recipient(s) could not be reached:\n'
        '\n'
        '      reader@example.org on 3/9/2025 6:00 AM\n'
        '            The e-mail account does not exist at the organization this message '
        'was sent to.\n'
        '            <mx.example.org #5.1.1>\n'
        '\n'
    ),
    "quoted_leading_apostrophe": (
        'From: MAILER-DAEMON@mail.example.org\n'
        'To: news@example.com\n'
        'Subject: Delivery failure\n'
        '\n'
        "Your message to 'reader@example.org' could not be delivered.\n"
        'Reason: 550 5.1.1 User unknown\n'
        '\n'
    ),
    "forwarded_names_the_failed": (
        'From: MAILER-DAEMON@mail.example.org\n'
        'To: news@example.com\n'
        'Subject: failure notice\n'
        '\n'
        'Your message was sent to alias@example.org and forwarded on.\n'
        'Delivery to the following recipient failed permanently:\n'
        '\n'
        '    real.reader@example.net\n'
        '\n'
        'Technical details of permanent failure:\n'
        '550 5.1.1 <real.reader@example.net>: user unknown\n'
        'Please contact postmaster@example.org for help.\n'
        '\n'
    ),
    "yahoo_old_remote_host_said": (
        'From: MAILER-DAEMON@mail.example.com\n'
        'To: news@example.com\n'
        'Subject: Failure Notice\n'
        '\n'
        'Sorry, we were unable to deliver your message to the following address.\n'
        '\n'
        '<reader@example.net>:\n'
        "Remote host said: 554 delivery error: dd This user doesn't have a example.net account "
        "(reader@example.net) [0] - mta1.example.net [RCPT_TO]\n"
        '\n'
    ),
    "transcript_rcpt_line": (
        'From: Mail Delivery Subsystem <MAILER-DAEMON@example.com>\n'
        'To: news@example.com\n'
        'Subject: Returned mail: User unknown\n'
        '\n'
        '----- Transcript of session follows -----\n'
        '... while talking to mx.example.net.:\n'
        '>>> RCPT To:<reader@example.net>\n'
        '<<< 550 MAILBOX NOT FOUND\n'
        '\n'
    ),
    "recipient_field_quoted": (
        'From: postmaster@example.net\n'
        'To: news@example.com\n'
        'Subject: Undeliverable message\n'
        '\n'
        'The message could not be delivered.\n'
        'Recipient: "reader@example.net"\n'
        'Reason: 550 Requested action not taken: mailbox unavailable\n'
        '\n'
    ),
    "delivery_to_field": (
        'From: postmaster@example.net\n'
        'To: news@example.com\n'
        'Subject: Delivery failure\n'
        '\n'
        'Delivery to: reader@example.net, failed.\n'
        'Error: 550 5.1.1 No such user.\n'
        '\n'
    ),
    "failed_recipient_quoted": (
        'From: MAILER-DAEMON@example.net\n'
        'To: news@example.com\n'
        'Subject: Undelivered Mail\n'
        '\n'
        'Could not deliver message to the following recipient(s):\n'
        '\n'
        "Failed Recipient: 'reader@example.net'.\n"
        'Reason: Remote host said: 550 5.1.1 unknown user account\n'
        '\n'
    ),
    "role_address_is_not_the_failed": (
        'From: MAILER-DAEMON@mail.example.net\n'
        'To: news@example.com\n'
        'Subject: Undeliverable mail\n'
        '\n'
        'Could not deliver to <reader@example.net>: 550 5.1.1 mailbox unknown\n'
        '\n'
        'postmaster@example.net: write to this address if the problem persists.\n'
        '\n'
    ),
}

# name: (recipient, kind)
EXPECTED = {
    "smtpsvc_not_reached": ("reader@example.org", "hard"),
    "quoted_leading_apostrophe": ("reader@example.org", "hard"),
    "forwarded_names_the_failed": ("real.reader@example.net", "hard"),
    "yahoo_old_remote_host_said": ("reader@example.net", "hard"),
    "transcript_rcpt_line": ("reader@example.net", "hard"),
    # RFC 5321's default 550 text without the command it answered: not proof
    "recipient_field_quoted": ("reader@example.net", "block"),
    "delivery_to_field": ("reader@example.net", "hard"),
    "failed_recipient_quoted": ("reader@example.net", "hard"),
    "role_address_is_not_the_failed": ("reader@example.net", "hard"),
}


@pytest.mark.parametrize("name", sorted(NOTICES))
def test_recipient_from_plain_notice(name):
    results = classify_message(NOTICES[name].encode())
    assert [(r["recipient"], r["kind"]) for r in results] == [EXPECTED[name]]

# Notices that name the recipient only in passing: the addresses they mention that are
# not the sender side, else the returned message's own To.
MENTIONED = {
    "user_x_unknown": (
        "From: MAILER-DAEMON@example.org\nTo: news@example.com\nSubject: Returned mail\n\n"
        "User reader@example.org unknown.\n"),
    "parenthesised": (
        "From: MAILER-DAEMON@example.org\nTo: news@example.com\nSubject: Undeliverable\n\n"
        "No such user (reader@example.org).\n"),
    "sent_from_to": (
        "From: Mail Delivery System <MAILER-DAEMON@example.org>\nTo: news@example.com\n"
        "Subject: Undelivered Mail\n\nThe mail you sent from news@example.com to "
        "reader@example.org could not be delivered.\nReason: mailbox unavailable\n"),
    "only_the_returned_to": (
        "From: MAILER-DAEMON@example.org\nTo: bounces@news.example.com\n"
        "Subject: Undeliverable\n\nYour message could not be delivered.\n\n"
        "--- Original message follows ---\nFrom: news@example.com\n"
        "To: reader@example.org\nSubject: June newsletter\n\nHello\n"),
}


@pytest.mark.parametrize("name", sorted(MENTIONED))
def test_recipient_mentioned_in_passing(name):
    results = classify_message(MENTIONED[name].encode())
    assert [r["recipient"] for r in results] == ["reader@example.org"]


# "Simple" notices in the wordings MTAs and gateways use (qmail-send's own text, Sendmail
# "permanent fatal errors", Exchange's "could not be reached", delay warnings): the
# recipients they name, and a recipient's "not accepting mail from <sender>" is its
# filter (never RFC 7505's domain that accepts no mail).
SIMPLE = [
    ('Unable to deliver message to: <reader@example.org>\nReason: 550 User unknown\n',
     ['reader@example.org'], 'block'),
    ('Your message to <reader@example.org> was rejected.\n550 Invalid recipient\n',
     ['reader@example.org'], 'block'),
    ("The following recipient(s) could not be reached:\n\n\t'reader@example.org'\n"
     "\tUser does not exist.\n",
     ['reader@example.org'], 'block'),
    ('Message not delivered to recipients below.\n\nreader@example.org:\n550 mailbox not found\n',
     ['reader@example.org'], 'unknown'),
    ('Mail to the following recipients could not be delivered because they are not accepting '
     'mail from news@example.com:\n'
     '\treader@example.org\n',
     ['reader@example.org'], 'block'),
    ('Delivery to the following recipient has been delayed:\n\n'
     '     reader@example.org\n\nMessage will be retried for 2 more day(s)\n',
     ['reader@example.org'], 'soft'),
    ('The following addresses had permanent fatal errors\n\n'
     '"Reader Name" <reader@example.org>\n    (reason: 550 5.1.1 User unknown)\n',
     ['reader@example.org'], 'hard'),
    ("I'm afraid I wasn't able to deliver your message to the following addresses.\n"
     "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
     "<reader@example.org>:\n192.0.2.10 does not like recipient.\n"
     "Remote host said: 550 5.1.1 <reader@example.org>... No such user\n"
     "Giving up on 192.0.2.10.\n",
     ['reader@example.org'], 'hard'),
    ('Your mail to the following recipients could not be delivered:\n'
     '  reader@example.org,\n  second@example.org.\n',
     ['reader@example.org', 'second@example.org'], 'unknown'),
]


@pytest.mark.parametrize(("body", "recipients", "kind"), SIMPLE)
def test_simple_notice(body, recipients, kind):
    raw = ("From: MAILER-DAEMON@mx.example.net\nTo: bounces@news.example.com\n"
           "Subject: Undeliverable\n\n" + body).encode()
    results = classify_message(raw)
    assert [r["recipient"] for r in results] == recipients
    assert {r["kind"] for r in results} == {kind}
