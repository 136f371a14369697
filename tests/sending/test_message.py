"""Rendering, composition, DKIM and VERP: pure code, checked with the real libraries."""

from __future__ import annotations

import email
import email.policy

import dkim as dkimpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deliverability import verp
from sending import dkim
from sending.compose import Composer
from sending.render import TemplateError, compile_template, render

CONTEXT = {
    "email": "ann@example.org",
    "subscriber": {"email": "ann@example.org", "name": "Ann <&>", "attributes": {"city": "Bern"}},
    "unsubscribe_url": "https://news.example.org/u/tok/",
    "one_click_url": "https://news.example.org/u/tok/one-click/",
    "list_id": "news.example.org",
}


def test_render_fields_defaults_missing_and_escaping():
    assert render("Hi {{ subscriber.name }}!", CONTEXT) == "Hi Ann <&>!"
    assert render("Hi {{subscriber.name}}!", CONTEXT, html=True) == "Hi Ann &lt;&amp;&gt;!"
    assert render("{{ subscriber.attributes.city }}", CONTEXT) == "Bern"
    assert render("[{{ subscriber.attributes.zip }}]", CONTEXT) == "[]"
    assert render('{{ subscriber.attributes.zip|default:"none" }}', CONTEXT) == "none"
    assert render("{{ subscriber.name.upper }}", CONTEXT) == ""  # no attribute access


@pytest.mark.parametrize("source", ["{{ settings.SECRET_KEY }}", "{{ subscriber.name() }}",
                                    "{{ __import__ }}", "{{ subscriber.name|safe }}",
                                    "open {{ subscriber.name"])
def test_render_sandbox_refuses_everything_else(source):
    with pytest.raises(TemplateError):
        compile_template(source)


def test_compiled_once_renders_many():
    template = compile_template("Dear {{ subscriber.name }}, leave: {{ unsubscribe_url }}")
    assert template.fields == ["subscriber.name", "unsubscribe_url"]
    assert template.render({"subscriber": {"name": "B"}}) == "Dear B, leave: "


def _composer(html="<p>Hello {{ subscriber.name }}</p>"):
    return Composer(mailing_id=7, from_email="Nëws <news@example.org>",
                    subject="Grüße {{ subscriber.name }}", text="Hello {{ subscriber.name }}\n"
                    ".leading dot\n" + "long line " * 40 + "\n",
                    html=html, list_id="news.example.org", feedback_id="7:bulk:newsletter:pw")


def test_composed_message_is_crlf_mime_with_rfc8058_headers():
    composer = _composer()
    raw = composer.compose({**CONTEXT, "unsubscribe_mailto": "unsubscribe+x@b.example.org"},
                           to="ann@example.org", message_id=composer.message_id(42))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Message-ID"] == "<pw.7.42@example.org>"
    assert str(message["Subject"]) == "Grüße Ann <&>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "<https://news.example.org/u/tok/one-click/>" in message["List-Unsubscribe"]
    assert "<mailto:unsubscribe+x@b.example.org>" in message["List-Unsubscribe"]
    assert message["List-Id"] == "<news.example.org>"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text.startswith("Hello Ann <&>\n.leading dot\nlong line")
    assert "Hello Ann &lt;&amp;&gt;" in message.get_body(("html",)).get_content()


@pytest.mark.parametrize(("body", "cte"), [
    ("Plain ASCII news.\n.leading dot\n" + "x" * 998 + "\n", "7bit"),
    ("Grüße aus Bern\n", "quoted-printable"),        # not ASCII
    ("trailing blank \nnext\n", "quoted-printable"),  # relays may strip it
    ("x" * 999 + "\n", "quoted-printable"),           # over RFC 5322's 998
    ("lone\rreturn\n", "quoted-printable"),
])
def test_a_body_goes_7bit_only_when_nothing_can_change_it(body, cte, tmp_path):
    composer = Composer(mailing_id=7, from_email="news@example.org", subject="S", text=body,
                        html=body)
    raw = composer.compose({}, to="ann@example.org", message_id="<a@b>")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain["Content-Transfer-Encoding"] == cte == html["Content-Transfer-Encoding"]
    assert plain.get_content().replace("\r\n", "\n") == body
    record = dkim.generate_rsa_key(tmp_path, "example.org", "pw1")
    signed = dkim.sign(raw, dkim.keys_for("example.org", tmp_path, ("pw1", "")))
    assert dkimpy.verify(signed, dnsfunc=lambda name, timeout=5: record.encode())


def test_no_unsubscribe_url_means_no_list_unsubscribe_headers():
    composer = _composer(html="")
    raw = composer.compose({"email": "x@y.org"}, to="x@y.org", message_id="<a@b>")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["List-Unsubscribe"] is None and message["List-Unsubscribe-Post"] is None
    assert message.get_content_type() == "text/plain"


def test_dkim_signature_verifies_with_dkimpy_and_covers_rfc8058(tmp_path):
    record = dkim.generate_rsa_key(tmp_path, "example.org", "pw1")
    keys = dkim.keys_for("example.org", tmp_path, ("pw1", ""))
    composer = _composer()
    raw = dkim.sign(composer.compose(CONTEXT, to="ann@example.org",
                                     message_id=composer.message_id(1)), keys)

    def dns(name, timeout=5):
        assert name == b"pw1._domainkey.example.org."
        return record.encode()

    assert dkimpy.verify(raw, dnsfunc=dns)
    signature = email.message_from_bytes(raw)["DKIM-Signature"]
    assert "a=rsa-sha256" in signature and "d=example.org" in signature
    signed = signature.replace("\r\n", "").replace(" ", "").split("h=")[1].split(";")[0]
    assert "list-unsubscribe-post" in signed and "list-unsubscribe" in signed.split(":")
    tampered = raw.replace(b"Hello Ann", b"Hello Bob")
    assert not dkimpy.verify(tampered, dnsfunc=dns)


def test_verp_round_trip_and_forgery():
    address = verp.encode(123456, "bounce.example.org")
    assert address.startswith("bounces+") and address.endswith("@bounce.example.org")
    assert verp.decode(address) == 123456
    assert verp.decode(f"<{address.upper()}>") == 123456  # MTAs may fold case
    local, _, domain = address.partition("@")
    forged = local[:-1] + ("a" if local[-1] != "a" else "b") + "@" + domain
    assert verp.decode(forged) is None
    assert verp.decode("bounces+1-aaaaaaaaaa@x.org") is None
    assert verp.decode("someone@example.org") is None
    assert verp.decode(verp.encode(5, "d.org", prefix="unsubscribe")) is None
    assert verp.decode(verp.encode(5, "d.org", prefix="unsubscribe"), prefix=None) == 5


@given(st.integers(min_value=0, max_value=2**63 - 1))
def test_verp_decodes_every_id(delivery_id):
    assert verp.decode(verp.encode(delivery_id, "b.example.org")) == delivery_id


def test_gate_allows_without_state_and_refuses_a_pause(redis_client, db):
    import time

    from deliverability import gate
    from deliverability.breaker.engine import Breaker

    gate.forget()
    assert gate.may_send("google", "bulk").allowed
    Breaker(redis=redis_client).pause("microsoft_consumer", "bulk", seconds=60, actor="S3150")
    decision = gate.may_send("microsoft_consumer", "bulk")
    assert not decision.allowed and decision.wait_until > time.time() and "S3150" in decision.reason
    assert gate.may_send("microsoft_consumer", "transactional").allowed


def test_a_pause_reaches_a_cached_gate_at_once(redis_client, db):
    """Another worker's trip is published: this process drops its cached "yes" immediately."""
    import time

    from deliverability import gate
    from deliverability.breaker.engine import Breaker

    gate.forget()
    assert gate.may_send("swisscom", "bulk").allowed  # cached for CACHE_SECONDS
    time.sleep(0.2)  # the listener thread subscribes
    other_worker = Breaker(redis=redis_client)
    other_worker.record(provider="swisscom", pool="bulk", code=554,
                        text="5.7.1 Swisscom AG IP: 192.0.2.1, You are not allowed to send us mail")
    started = time.monotonic()
    while gate.may_send("swisscom", "bulk").allowed:
        assert time.monotonic() - started < gate.CACHE_SECONDS / 2, "pause not seen in time"
        time.sleep(0.005)


def test_a_second_ed25519_signature_verifies_beside_the_rsa_one(tmp_path):
    """RFC 8463: an Ed25519 signature next to the RSA one, each checked by dkimpy."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    records = {b"pw1._domainkey.example.org.": dkim.generate_rsa_key(tmp_path, "example.org",
                                                                     "pw1").encode()}
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "example.org" / "pw2.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    records[b"pw2._domainkey.example.org."] = dkim.dns_record(key).encode()
    keys = dkim.keys_for("example.org", tmp_path, ("pw1", "pw2"))
    assert [k.algorithm for k in keys] == [b"rsa-sha256", b"ed25519-sha256"]
    composer = _composer()
    raw = dkim.sign(composer.compose(CONTEXT, to="ann@example.org",
                                     message_id=composer.message_id(3)), keys)

    def dns(name, timeout=5):
        return records[name]

    def verifies(message: bytes, index: int) -> bool:
        try:
            return dkimpy.DKIM(message).verify(idx=index, dnsfunc=dns)
        except dkimpy.DKIMException:
            return False

    signatures = email.message_from_bytes(raw).get_all("DKIM-Signature")
    assert len(signatures) == 2
    assert {"a=ed25519-sha256" in s.replace(" ", "") for s in signatures} == {True, False}
    assert verifies(raw, 0) and verifies(raw, 1)
    tampered = raw.replace(b"Hello Ann", b"Hello Bob")
    assert not verifies(tampered, 0) and not verifies(tampered, 1)


def test_postmark_metadata_header_names_our_message_id_only_when_asked():
    plain = _composer().compose(CONTEXT, to="ann@example.org", message_id="<pw.7.42@example.org>")
    assert b"X-PM-Metadata" not in plain
    composer = Composer(mailing_id=7, from_email="news@example.org", subject="S", text="T",
                        postmark_metadata=True)
    raw = composer.compose(CONTEXT, to="ann@example.org", message_id=composer.message_id(42))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    # What deliverability.esp.postmark reads back from the event's Metadata.
    assert message["X-PM-Metadata-pw-message-id"] == message["Message-ID"]


def test_postmark_metadata_is_on_where_postmarks_webhook_is_set(monkeypatch):
    from sending import conf

    monkeypatch.delenv("POSTMARK_METADATA_HEADER", raising=False)
    monkeypatch.delenv("POSTMARK_WEBHOOK_USER", raising=False)
    conf.reload()
    assert conf.get().postmark_metadata is False
    monkeypatch.setenv("POSTMARK_WEBHOOK_USER", "hooks")
    conf.reload()
    assert conf.get().postmark_metadata is True
    monkeypatch.setenv("POSTMARK_METADATA_HEADER", "false")
    conf.reload()
    assert conf.get().postmark_metadata is False
    monkeypatch.undo()
    conf.reload()
