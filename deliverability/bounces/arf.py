"""Feedback reports: RFC 5965 (ARF), RFC 6591 (auth-failure), RFC 6650, Microsoft JMRP.

One message may carry several reports: several ``message/feedback-report`` parts, or
several whole reports attached as ``message/rfc822`` (providers that send a digest of
complaints). Each report gives one result per recipient it names:

- ``Original-Rcpt-To`` (RFC 5965 section 3.2, may repeat), else ``Removal-Recipient``
  (RFC 6650 draft field some opt-out reports use);
- else the reported message's own headers (the part after the report, RFC 5965
  section 2 item 3): ``To``, then the recipient's system's ``Delivered-To`` /
  ``X-Original-To`` when ``To`` names nobody (undisclosed recipients).
"""

from __future__ import annotations

import re

from . import mime, textscan
from .dsn import clean_address
from .model import Failure, Report

ORIGINAL_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers",
                  "message/rfc822-headers", "message/global-headers")
# RFC 5965 3.1 and the IANA "Feedback Report Type Values" registry (RFC 6591, 6650)
FEEDBACK_TYPES = frozenset({"abuse", "fraud", "virus", "other", "not-spam", "auth-failure",
                            "opt-out", "dmarc"})
_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9\-]*)[ \t]*:[ \t]*(.*)$")
_NESTED = re.compile(r"report-type\s*=\s*\"?feedback-report", re.I)
# RFC 5965 3.1's required fields, for a report whose fields came as text/plain (older
# feedback loops labelled the part wrongly): Feedback-Type with User-Agent or Version.
_FIELDS_IN_TEXT = re.compile(r"^feedback-type:[ \t]*[a-z\-]+[ \t]*$", re.I | re.M)
_SECOND_FIELD = re.compile(r"^(?:user-agent|version):[ \t]*\S", re.I | re.M)


def fields_in_text(text: str) -> bool:
    head = text[:2000]
    return bool(_FIELDS_IN_TEXT.search(head) and _SECOND_FIELD.search(head))
MAX_REPORTS = 50


def fields(text: str) -> list[tuple[str, str]]:
    """The report's fields in order (names lower-cased; repeated fields kept)."""
    out: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if line[:1] in (" ", "\t") and out:
            name, value = out[-1]
            out[-1] = (name, f"{value} {line.strip()}")
            continue
        m = _FIELD.match(line.strip())
        if m:
            out.append((m.group(1).lower(), m.group(2).strip()))
    return out


def reports(root: mime.Part, depth: int = 0) -> list[tuple[str, str]]:
    """(feedback fields, reported message) for every report in the tree, in order."""
    out: list[tuple[str, str]] = []
    pending: str | None = None
    leaves = list(mime.leaves(root))
    labelled = any(leaf.ctype == "message/feedback-report" for leaf in leaves)
    for leaf in leaves:
        if leaf.ctype == "message/feedback-report" or (
                not labelled and leaf.ctype == "text/plain" and fields_in_text(leaf.text)):
            if pending is not None:
                out.append((pending, ""))
            pending = leaf.text
        elif leaf.ctype in ORIGINAL_TYPES:
            head = leaf.text.lstrip("\n")[:3000]
            if depth < 2 and _NESTED.search(head):  # a whole report attached
                out.extend(reports(mime.parse_entity(leaf.text.lstrip("\n")), depth + 1))
                continue
            if pending is not None:
                out.append((pending, leaf.text))
                pending = None
        if len(out) >= MAX_REPORTS:
            break
    if pending is not None:
        out.append((pending, ""))
    return out[:MAX_REPORTS]


def has_nested(root: mime.Part) -> bool:
    return any(leaf.ctype in ORIGINAL_TYPES and _NESTED.search(leaf.text.lstrip("\n")[:3000])
               for leaf in mime.leaves(root))


def _reported_recipients(original: str) -> list[str]:
    head, _ = mime.split_head_body(original.lstrip("\n"))
    hdrs = mime.parse_headers(head)
    for name in ("to", "delivered-to", "x-original-to", "envelope-to"):
        found = textscan.addresses(mime.decode_words(hdrs.get(name, "")))
        if found:
            return [found[0].lower()] if name == "to" else [found[-1].lower()]
    return []


def _reported_ids(original: str) -> tuple[str, str]:
    head, _ = mime.split_head_body(original.lstrip("\n"))
    hdrs = mime.parse_headers(head)
    rp = textscan.addresses(hdrs.get("return-path", ""))
    return (rp[0].lower() if rp else ""), hdrs.get("message-id", "").strip()[:300]


def read(report: Report, root: mime.Part) -> None:
    """Fill ``report`` with one failure per recipient of every feedback report."""
    diagnostic = textscan.squash(report.notice)[:500]
    for text, original in reports(root):
        fs = fields(text)
        ftype = next((v.split()[0].lower() for k, v in fs if k == "feedback-type" and v), "abuse")
        if ftype not in FEEDBACK_TYPES:
            ftype = "other"
        rcpts = [clean_address(v).lower() for k, v in fs if k == "original-rcpt-to" and v]
        rcpts = rcpts or [clean_address(v).lower() for k, v in fs
                          if k == "removal-recipient" and v]
        rcpts = rcpts or _reported_recipients(original or report.original) or [""]
        domain = next((v for k, v in fs if k == "reported-domain"), "")
        return_path, message_id = _reported_ids(original or report.original)
        for rcpt in dict.fromkeys(rcpts):
            report.failures.append(Failure(recipient=rcpt, reason="feedback",
                                           feedback_type=ftype, diagnostic=diagnostic,
                                           remote_mta=domain,
                                           reported_return_path=return_path,
                                           reported_message_id=message_id))
    if report.failures:
        report.form = "arf"


def read_jmrp(report: Report) -> None:
    """Microsoft JMRP complaints: the reported message carries X-HmXmrOriginalRecipient."""
    head, _ = mime.split_head_body(report.original.lstrip("\n"))
    hdrs = mime.parse_headers(head)
    rcpt = clean_address(hdrs.get("x-hmxmroriginalrecipient", ""))
    report.failures.append(Failure(recipient=rcpt, reason="feedback", feedback_type="abuse",
                                   diagnostic=textscan.squash(report.subject)))
    report.form = "arf"
