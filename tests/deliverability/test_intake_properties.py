"""Whatever arrives is stored and never raises; what nobody understands is ``unknown``."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deliverability.intake import ingest
from deliverability.models import InboundMessage
from tests.deliverability.intake_support import FIXTURES

KINDS = {"hard", "soft", "block", "complaint", "auto_reply", "delivered", "unknown"}
REPORT = (FIXTURES / "bounces" / "rfc3464_user_unknown.eml").read_bytes()
ARF = (FIXTURES / "bounces" / "arf_abuse_rfc5965.eml").read_bytes()

run = settings(max_examples=40, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture,
                                      HealthCheck.too_slow])

header_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
                      max_size=200)
junk = st.one_of(
    st.binary(max_size=3000),
    # Malformed MIME: a multipart without its boundary, or with parts that never end.
    st.builds(lambda b, body: (b"Content-Type: multipart/mixed; boundary=\"" + b + b"\"\r\n\r\n--"
                               + b + b"\r\nContent-Type: text/plain\r\n" + body),
              st.binary(min_size=0, max_size=70), st.binary(max_size=500)),
    # Wrong charsets: a declared charset that does not exist or does not match.
    st.builds(lambda cs, body: (b"Subject: =?" + cs.encode() + b"?B?" + body[:40] + b"?=\r\n"
                                b"Content-Type: text/plain; charset=" + cs.encode()
                                + b"\r\n\r\n" + body),
              st.sampled_from(["utf-16", "x-no-such", "utf-8", "iso-2022-jp", "", "utf-7"]),
              st.binary(max_size=800)),
    # Huge headers: one header line of up to 200,000 characters, or thousands of them.
    st.builds(lambda name, n, v: (f"{name}: ".encode() + v.encode("utf-8", "replace") * n
                                  + b"\r\n\r\nhello"),
              st.sampled_from(["X-Junk", "Subject", "To", "Received", "Message-ID"]),
              st.integers(1, 1000), header_text),
    st.builds(lambda n: b"".join(b"X-H%d: v\r\n" % i for i in range(n)) + b"\r\nbody",
              st.integers(1000, 5000)),
)


def assert_stored(raw: bytes) -> InboundMessage:
    message = ingest(raw, source="pipe")
    stored = InboundMessage.objects.get(pk=message.pk)
    assert stored.raw == raw and stored.processed_at is not None
    assert stored.events.exists()
    assert set(stored.events.values_list("kind", flat=True)) <= KINDS
    return stored


@run
@given(raw=junk)
def test_junk_is_stored_and_unknown(db, raw):
    stored = assert_stored(raw)
    assert stored.outcome == "unknown" and not stored.error
    assert set(stored.events.values_list("kind", flat=True)) == {"unknown"}


@run
@given(cut=st.integers(0, len(REPORT)), noise=st.binary(max_size=50))
def test_truncated_reports_are_stored_without_error(db, cut, noise):
    assert not assert_stored(REPORT[:cut] + noise).error


@run
@given(cut=st.integers(0, len(ARF)), charset=st.sampled_from([b"utf-16", b"x-bogus", b"koi8-r"]))
def test_truncated_complaints_in_wrong_charsets_are_stored(db, cut, charset):
    raw = ARF.replace(b"Content-Type: text/plain", b"Content-Type: text/plain; charset=" + charset)
    assert not assert_stored(raw[:cut]).error
