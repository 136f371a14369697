"""Received-header analyser: real header formats explained hop by hop.

Formats: RFC 5321 section 4.4 (the FROM clause), Postfix's smtpd_received
header, Exim's default received_header_text, Sendmail's "(may be forged)",
and headers as Gmail and Exchange Online write them (from messages received
at those providers).
"""

import io
import json

import pytest
from django.core.management import call_command

from deliverability.received import OurIdentity, explain, parse_received, summary

SEED = ("from mail.com ([94.130.34.42]) by smtp-27.iol.local with SMTP id "
        "itOWeYZ6O42IFitOWe35TR; Tue, 13 Feb 2018 03:54:09 +0100")

CASES = [
    # (header value, helo, rdns, ip, by, flags that must be present)
    (SEED, "mail.com", None, "94.130.34.42", "smtp-27.iol.local", {"no-rdns"}),
    # Postfix: "from HELO (RDNS [IP])"
    ("from mail.example.org (mail.example.org [198.51.100.25]) by mx.example.net (Postfix) with "
     "ESMTPS id 4F1Xyz2abc; Tue, 13 Feb 2018 03:54:09 +0100",
     "mail.example.org", "mail.example.org", "198.51.100.25", "mx.example.net", set()),
    # Postfix, no reverse DNS
    ("from helo.example (unknown [198.51.100.1]) by mx.example.net (Postfix) with ESMTP id 1A; "
     "Tue, 13 Feb 2018 03:54:09 +0100", "helo.example", None, "198.51.100.1", "mx.example.net",
     {"no-rdns"}),
    # Gmail: the reverse DNS with a trailing dot
    ("from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com "
     "with SMTPS id a1sor4052; Tue, 13 Feb 2018 03:54:09 -0800 (PST)",
     "mail-sor-f41.google.com", "mail-sor-f41.google.com", "209.85.220.41", "mx.google.com",
     set()),
    # Exim: "from RDNS ([IP] helo=HELO)"
    ("from mail.example.org ([198.51.100.25] helo=client.example) by mail.example.net with esmtps "
     "(TLS1.3) tls TLS_AES_256_GCM_SHA384 (Exim 4.96) (envelope-from <a@example.org>) id "
     "1rXyZ-000Abc-1x; Tue, 13 Feb 2018 03:54:09 +0100",
     "client.example", "mail.example.org", "198.51.100.25", "mail.example.net", {"helo-mismatch"}),
    # Exim, no reverse DNS: "from [IP] (helo=HELO)"
    ("from [198.51.100.7] (helo=laptop) by mail.example.net with esmtpa (Exim 4.96) id 1rX; "
     "Tue, 13 Feb 2018 03:54:09 +0100", "laptop", None, "198.51.100.7", "mail.example.net",
     {"no-rdns"}),
    # Exchange Online: "from HELO (IP)" records no reverse DNS
    ("from AM6PR01MB1234.eurprd01.prod.exchangelabs.com (2603:10a6:20b:a4::14) by "
     "AM6PR01MB5678.eurprd01.prod.exchangelabs.com (2603:10a6:20b:b0::18) with Microsoft SMTP "
     "Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.1234.5; "
     "Tue, 13 Feb 2018 02:54:09 +0000",
     "am6pr01mb1234.eurprd01.prod.exchangelabs.com", None, "2603:10a6:20b:a4::14",
     "am6pr01mb5678.eurprd01.prod.exchangelabs.com", {"no-rdns"}),
    # Sendmail: a HELO that does not match, marked "(may be forged)"
    ("from evil.example (mail.example.org [198.51.100.25] (may be forged)) by mx.example.net "
     "(8.15.2/8.15.2) with ESMTP id x1D2sABC; Tue, 13 Feb 2018 03:54:09 +0100",
     "evil.example", "mail.example.org", "198.51.100.25", "mx.example.net",
     {"helo-mismatch", "may-be-forged"}),
]


@pytest.mark.parametrize(("value", "helo", "rdns", "ip", "by", "flags"), CASES)
def test_hops_are_read(value, helo, rdns, ip, by, flags):
    hop = parse_received(value)
    assert (hop.helo, hop.rdns, hop.ip, hop.by) == (helo, rdns, ip, by)
    assert flags <= set(hop.flags)
    if rdns and helo == rdns:
        assert "helo-mismatch" not in hop.flags


def test_the_seed_line_is_explained_in_words():
    hop = parse_received(SEED)
    assert hop.time == "2018-02-13T03:54:09+01:00"
    text = hop.explain()
    assert "HELO 'mail.com'" in text and "no reverse DNS recorded" in text
    assert "IP 94.130.34.42" in text


def test_internal_hops_without_from_are_kept():
    hop = parse_received("by 2002:a05:6a10:1234::abcd with SMTP id x12csp123; "
                         "Tue, 13 Feb 2018 03:54:09 -0800 (PST)")
    assert hop.helo is None and hop.ip is None and hop.by == "2002:a05:6a10:1234::abcd"


MESSAGE = (
    "Return-Path: <bounces+2n9c-abcdefghij@bounce.example.org>\r\n"
    f"Received: from mx.other.example (mx.other.example [203.0.113.9]) by mx.final.example "
    "(Postfix) with ESMTP id A1; Tue, 13 Feb 2018 03:55:00 +0100\r\n"
    f"Received: {SEED}\r\n"
    "Message-ID: <abc.123@news.example.org>\r\n"
    "From: News <news@example.org>\r\nSubject: hi\r\n\r\nbody\r\n"
)


def test_a_message_through_our_relay_with_our_marks_is_ours():
    ours = OurIdentity(relay_ips={"94.130.34.42"}, message_id_domains={"news.example.org"},
                       verp_decode=lambda address: 1 if address.startswith("bounces+") else None)
    result = explain(MESSAGE.encode(), ours)
    assert [h.ip for h in result.hops] == ["203.0.113.9", "94.130.34.42"]
    assert "our-relay" in result.hops[1].flags
    assert result.ours["sent_through_us"] and result.ours["verp"] and result.ours["message_id"]
    assert "Verdict: sent through us" in summary(result)


def test_our_ip_without_our_marks_is_flagged_as_someone_else():
    ours = OurIdentity(relay_ips={"94.130.34.42"}, message_id_domains={"mail.example.net"})
    result = explain(MESSAGE.replace("Return-Path: <bounces+2n9c-abcdefghij@bounce.example.org>"
                                     "\r\n", "").encode(), ours)
    assert result.ours["relay_ip"] and not result.ours["sent_through_us"]
    assert "someone else may be using the IP" in summary(result)


def test_a_pasted_header_block_is_read_too():
    pasted = "Received: from mail.com ([94.130.34.42])\n  by smtp-27.iol.local with SMTP id x;\n" \
             "  Tue, 13 Feb 2018 03:54:09 +0100\n"
    hop = explain(pasted).hops[0]
    assert (hop.helo, hop.rdns, hop.ip) == ("mail.com", None, "94.130.34.42")


@pytest.mark.django_db  # the command reads our identity (relays, mailings)
def test_command_prints_json_per_hop(tmp_path):
    path = tmp_path / "sample.eml"
    path.write_bytes(MESSAGE.encode())
    out = io.StringIO()
    call_command("explain_headers", str(path), "--json", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[1]["helo"] == "mail.com" and lines[1]["rdns"] is None
    assert lines[1]["ip"] == "94.130.34.42" and lines[1]["by"] == "smtp-27.iol.local"
    assert set(lines[1]) >= {"helo", "rdns", "ip", "by", "time", "flags"}
    assert "ours" in lines[-1]


def test_junk_never_raises():
    for junk in (b"", b"\xff\xfe\x00garbage", b"Received: from\r\n\r\n", b"Received: ;;;\r\n"):
        explain(junk)


def test_internal_addresses_are_marked():
    assert "private-ip" in parse_received("from a (b [10.1.2.3]) by c; "
                                          "Tue, 13 Feb 2018 03:54:09 +0100").flags
    assert "private-ip" not in parse_received(SEED).flags
