"""Transactional messages composed from literal parts (sending.compose.compose_literal)."""

from __future__ import annotations

from email import message_from_bytes, policy

from sending.compose import compose_literal


def _parse(data: bytes):
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    return message_from_bytes(data, policy=policy.default)


def _text(part) -> str:
    return part.get_content().replace("\r\n", "\n")  # the parser keeps the wire's CRLF


def test_plain_ascii_goes_as_it_is():
    message = _parse(compose_literal(
        from_email="news@example.org", to="reader@example.org", subject="Please confirm",
        text="Click {{ this }}.\n", message_id="<1@example.org>",
        headers={"Auto-Submitted": "auto-generated"}))
    assert message["Subject"] == "Please confirm"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Message-ID"] == "<1@example.org>"
    assert message.get_content_type() == "text/plain"
    assert _text(message) == "Click {{ this }}.\n"  # literal: no template syntax


def test_non_ascii_names_subject_and_bodies_round_trip():
    message = _parse(compose_literal(
        from_email="Bücher Günther <news@example.org>", to="reader@example.org",
        subject="Bitte bestätigen Sie Ihr Abonnement für „Bücher“",
        text="Grüße,\n" + "ä" * 1200 + "\n.leading dot\n",
        html="<p>Grüße &amp; <a href=\"https://x.test/?a=1&amp;b=2\">Bestätigen</a></p>",
        message_id="<2@example.org>", headers={"Reply-To": "Redaktion <r@example.org>"}))
    assert message["From"].addresses[0].display_name == "Bücher Günther"
    assert message["Subject"] == "Bitte bestätigen Sie Ihr Abonnement für „Bücher“"
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    # The line break before a boundary belongs to the boundary (RFC 2046 5.1.1).
    assert _text(text) == "Grüße,\n" + "ä" * 1200 + "\n.leading dot"
    assert "Bestätigen</a>" in _text(html)
    assert message["Reply-To"].addresses[0].addr_spec == "r@example.org"
