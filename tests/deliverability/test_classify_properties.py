"""Property tests: classification never raises and junk never looks like a verdict."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deliverability.classify import KINDS, classify_message, classify_reply

FIXTURE_DSN = (
    b"From: MAILER-DAEMON@mx.example.net\r\nTo: b@example.com\r\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
    b"Final-Recipient: rfc822; a@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
    b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n\r\n--B--\r\n"
)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER_NAMES = st.sampled_from([
    "From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding",
    "X-Failed-Recipients", "Auto-Submitted", "Final-Recipient", "Status"])


def _check(results):
    assert isinstance(results, list)
    for r in results:
        assert r["kind"] in KINDS
        assert isinstance(r["hard"], bool)
        if r["kind"] == "block":
            assert r["hard"] is False


@SETTINGS
@given(st.binary(max_size=4000))
def test_binary_junk(raw):
    results = classify_message(raw)
    _check(results)
    for r in results:  # junk may look like text, but never like a proven bad address
        assert not (r["hard"] and not r["recipient"])


@SETTINGS
@given(st.integers(min_value=0, max_value=len(FIXTURE_DSN)))
def test_truncated_report(cut):
    _check(classify_message(FIXTURE_DSN[:cut]))


@SETTINGS
@given(st.lists(st.tuples(HEADER_NAMES, st.text(max_size=200)), max_size=20),
       st.text(max_size=2000))
def test_malformed_mime(headers, body):
    head = "\r\n".join(f"{k}: {v}" for k, v in headers)
    raw = (head + "\r\n\r\n" + body).encode("utf-8", "surrogatepass")
    _check(classify_message(raw))


@SETTINGS
@given(st.sampled_from(["utf-8", "latin-1", "iso-2022-jp", "x-unknown-charset", "utf-16", ""]),
       st.sampled_from(["base64", "quoted-printable", "7bit", "x-junk"]),
       st.binary(max_size=1500))
def test_wrong_charsets_and_encodings(charset, cte, payload):
    raw = (b"From: MAILER-DAEMON@x.example\r\nSubject: Undelivered Mail\r\n"
           b"Content-Type: text/plain; charset=" + charset.encode() + b"\r\n"
           b"Content-Transfer-Encoding: " + cte.encode() + b"\r\n\r\n" + payload)
    _check(classify_message(raw))


@settings(max_examples=10, deadline=None)
@given(st.integers(min_value=1, max_value=5))
def test_huge_headers(mult):
    raw = (b"From: MAILER-DAEMON@x.example\r\nX-Long: " + b"a" * (300_000 * mult) + b"\r\n" +
           b"Received: x\r\n" * 20_000 + b"\r\n" + FIXTURE_DSN)
    _check(classify_message(raw))


@SETTINGS
@given(st.text(alphabet=string.printable, max_size=30))
def test_nested_boundaries_do_not_recurse_forever(boundary):
    b = (boundary.replace('"', "").replace("\r", "").replace("\n", "") or "b").encode()
    part = b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n--" + b + b"\r\n"
    raw = b"From: MAILER-DAEMON@x.example\r\n" + part * 50 + b"text\r\n"
    _check(classify_message(raw))


@SETTINGS
@given(st.one_of(st.none(), st.integers(), st.text(max_size=5)), st.one_of(st.none(), st.text()))
def test_reply_never_raises(code, text):
    r = classify_reply(code, text)
    assert r["kind"] in KINDS


def test_not_bytes_is_unknown_not_an_error():
    assert classify_message(None) == [classify_message(None)[0]]
    assert classify_message(None)[0]["kind"] == "unknown"
