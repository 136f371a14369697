"""Real provider replies land in the right breaker class.

Each vector is a reply text as published by the provider or quoted in
shared/research/deliverability.md section 8 (which cites the captures):
the source is named beside it.
"""

import pytest

from deliverability.breaker.rules import classify, normalise_reply

VECTORS = [
    # Google, support.google.com/mail/answer/81126 and 3726730 (rate limit)
    ("google", 421, "4.7.28 [192.0.2.25] Our system has detected an unusual rate of unsolicited "
     "mail originating from your IP address. To protect our users from spam, mail sent from your "
     "IP address has been temporarily rate limited.", "throttle"),
    # Google: blocked for unsolicited mail (sisimai for-google, Momentum appendix)
    ("google", 550, "5.7.1 Our system has detected an unusual rate of unsolicited mail "
     "originating from your IP address. To protect our users from spam, mail sent from your IP "
     "address has been blocked.", "block"),
    # Google, answer 14229414: DMARC / authentication
    ("google", 550, "5.7.26 Unauthenticated email from example.org is not accepted due to "
     "domain's DMARC policy.", "auth_config"),
    ("google", 550, "5.7.25 The IP address sending this message does not have a PTR record "
     "setup.", "auth_config"),
    ("google", 550, "5.7.1 Our system has detected that this message is likely unsolicited mail.",
     "content"),
    ("google", 550, "5.1.1 The email account that you tried to reach does not exist.",
     "recipient_hard"),
    ("google", 452, "4.2.2 The email account that you tried to reach is over quota.",
     "recipient_soft"),
    # Yahoo Sender Hub, "SMTP Error Codes"
    ("yahoo", 421, "4.7.0 [TSS04] Messages from 192.0.2.25 temporarily deferred due to unexpected "
     "volume or user complaints - 4.16.55.1", "reputation"),
    ("yahoo", 553, "5.7.2 [TSS09] All messages from 192.0.2.25 will be permanently deferred; "
     "Retrying will NOT succeed.", "block"),
    ("yahoo", 554, "Message not allowed - [PH01] Email not accepted for policy reasons.",
     "content"),
    ("yahoo", 550, "5.7.9 This mail has been blocked because the sender is unauthenticated. "
     "Yahoo requires all senders to authenticate with either SPF or DKIM.", "auth_config"),
    ("yahoo", 421, "Max message per connection reached, closing transmission channel",
     "connection"),
    # Microsoft, delisting page (S3150) and the Outlook.com error codes page
    ("microsoft_consumer", 550, "5.7.1 Unfortunately, messages from [192.0.2.25] weren't sent. "
     "Please contact your Internet service provider since part of their network is on our block "
     "list (S3150).", "block"),
    ("microsoft_365", 550, "5.7.606 Access denied, banned sending IP [192.0.2.25].", "block"),
    ("microsoft_consumer", 451, "4.7.650 The mail server [192.0.2.25] has been temporarily rate "
     "limited due to IP reputation.", "reputation"),
    ("microsoft_consumer", 421, "RP-001 (BAY004-MC1F33) Unfortunately, some messages from "
     "192.0.2.25 weren't sent. Please try again. We have limits for how many messages can be sent "
     "per hour and per day.", "throttle"),
    ("microsoft_365", 550, "5.7.515 Access denied, sending domain example.org does not meet the "
     "required authentication level.", "auth_config"),
    # Apple, support.apple.com/102322 and sisimai's rhost samples
    ("apple", 421, "4.7.1 Messages to foo@icloud.com deferred due to excessive volume. Try again "
     "later.", "throttle"),
    ("apple", 554, "5.7.1 [HME1] Message rejected: failing both SPF and DKIM.", "auth_config"),
    # T-Online, postmaster.t-online.de
    ("t_online", 554, "IP=192.0.2.25 - A problem occurred. (Ask your postmaster for help or to "
     "contact tosa@rx.t-online.de to clarify.) (NOWL)", "block"),
    # GMX / WEB.DE, postmaster.gmx.com
    ("united_internet", 554, "Transaction failed Reject due to policy restrictions.", "block"),
    ("united_internet", 421, "Service temporarily not available. Reject due to policy "
     "restrictions.", "throttle"),
    # Orange (sisimai for-franceptt)
    ("orange", 550, "5.7.1 Service unavailable; client host blocked for spamming issues. "
     "OFR006_102 Ref", "block"),
    ("orange", 421, "mwinf5c10 ME Trop de connexions, veuillez verifier votre configuration. "
     "OFR005_104", "connection"),
    # Comcast, postmaster.comcast.net error codes
    ("comcast", 554, "resimta-ch2-18v.sys.comcast.net resimta-ch2-18v.sys.comcast.net "
     "192.0.2.25 found on one or more DNSBLs, see http://postmaster.comcast.net/smtp-error-codes."
     "php#BL000001", "block"),
    ("comcast", 421, "4.1.0 192.0.2.25 Throttled - try again later. Please see "
     "http://postmaster.comcast.net/smtp-error-codes.php#RL000001", "throttle"),
    # Swisscom: the seed case of DESIGN.md
    ("swisscom", 554, "5.7.1 Swisscom AG IP: 94.130.34.42, You are not allowed to send us mail. "
     "Please visit http://www.swisscom.ch/p/mail/de/spam", "block"),
    # Generic: a Spamhaus listing at some company's server (sisimai reason/why-blocked)
    ("mx.example.net", 554, "5.7.1 Service unavailable; Client host [192.0.2.25] blocked using "
     "zen.spamhaus.org", "block"),
    ("mx.example.net", 550, "5.1.1 <nobody@example.net>: Recipient address rejected: User unknown "
     "in virtual mailbox table", "recipient_hard"),
    ("mx.example.net", 450, "4.7.1 Client host rejected: cannot find your hostname, "
     "[192.0.2.25]", "auth_config"),
    ("mx.example.net", 451, "4.3.0 Temporary lookup failure", "transient"),
]


@pytest.mark.parametrize(("provider", "code", "text", "expected"), VECTORS,
                         ids=[f"{v[0]}-{v[1]}-{i}" for i, v in enumerate(VECTORS)])
def test_provider_replies_land_in_the_right_class(provider, code, text, expected):
    assert classify(provider, code, text).klass == expected


def test_multi_line_replies_are_joined():
    text = ("421-4.7.28 [192.0.2.25] Our system has detected an unusual rate of\r\n"
            "421-4.7.28 unsolicited mail originating from your IP address. To protect our\r\n"
            "421 4.7.28 users from spam, mail sent from your IP address has been temporarily "
            "rate limited.")
    normalised = normalise_reply(421, text)
    assert normalised.startswith("421 4.7.28 [192.0.2.25] Our system")
    assert "4.7.28 unsolicited" not in normalised
    assert classify("google", 421, text).klass == "throttle"


def test_the_classifier_reason_decides_when_no_rule_does():
    assert classify("mx.example.net", 554, "go away", reason="blocked").klass == "block"
    assert classify("mx.example.net", 550, "go away").klass == "unknown_5xx"
