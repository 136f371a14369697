"""Turn a raw message into a Report: which format it is and what it says per recipient.

Order of trust: structured fields first (RFC 5965 feedback reports, every one of them,
arf.py; RFC 3464 delivery-status groups), then RFC 3834 auto-replies (autoreply.py),
then vendor layouts read by their own format (layouts/), then plain-text notices
(plaintext.py: X-Failed-Recipients, address lines, transcripts, sentences). Nothing
here decides a reason except where the format itself says it (feedback, vacation, a
layout's fixed vocabulary).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from . import arf, autoreply, layouts, mime, plaintext, signs, textscan
from .dsn import normal_status, parse_fields, strip_type
from .model import Failure, Report
from .plaintext import own_text, recipient_starts

_REPORT_TYPES = ("message/delivery-status", "message/global-delivery-status")
_ORIGINAL_TYPES = ("message/rfc822", "message/global", "text/rfc822-headers",
                   "message/rfc822-headers", "message/global-headers", "message/partial")
_HTML_TAG = re.compile(r"<(?:br|/p|/div|/tr|/li|p|div|tr|li)\b[^>]*>|<[^>]+>", re.I)
_HTML_ENTITY = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&#39;": "'"}

# Lines that start the copy of the returned message in a plain-text bounce.
_ORIGINAL_MARK = re.compile(
    r"^[ \t>]*(?:-{2,}|\*{2,}|={2,}|_{2,})?[ \t]*(?:"
    r"below this line is a copy of the message|this is a copy of the message|"
    r"original message(?: follows| was| header| headers)?|unsent message follows|"
    r"returned message|the original message headers? (?:is|are)|"
    r"message headers follow|below is a copy of the original message|"
    r"the (?:first|header of the) (?:\d+ lines? of the )?(?:original )?message|"
    r"original mail as follows|headers of the original message|"
    r"copy of the original message|this is the original message|"
    r"returned mail follows|mensaje original|message d'origine|"
    r"original message header follows|the original message's headers|"
    r"(?:undelivered|rejected) message(?: headers)? follows)"
    r"[^\n]*$", re.M)  # run on lower-cased text (IGNORECASE is several times slower)
_HEADER_START = re.compile(
    r"^(?:Return-Path|Received|Message-I[Dd]|DKIM-Signature|Delivered-To|X-Received|"
    r"ARC-Seal|X-Google-Smtp-Source|Authentication-Results|X-Originating-IP|"
    r"X-Mailer|User-Agent)[ \t]*:|^Content-Type: message/rfc822", re.M | re.I)
_NESTED_REPORT = re.compile(r"^content-type:[ \t]*multipart/report", re.I | re.M)
_DSN_FIELD = re.compile(r"^(?:final|original)-recipient[ \t]*:", re.I | re.M)


def _html_to_text(html: str) -> str:
    text = _HTML_TAG.sub(lambda m: "\n" if m.group(0)[1:2] not in ("/", "") or
                         m.group(0).lower().startswith(("</p", "</div", "</tr", "</li", "<br"))
                         else "", html)
    for k, v in _HTML_ENTITY.items():
        text = text.replace(k, v)
    return text


_QUOTED = re.compile(r"^> ?", re.M)


def _unquote(text: str) -> str:
    """A bounce forwarded inline ("> " on most lines) reads like the bounce itself."""
    lines = text.count("\n") + 1
    if lines > 4 and text.count("\n>") > lines // 2:
        return _QUOTED.sub("", text)
    return text


_FORWARDED = re.compile(
    r"^[ \t>]*(?:begin forwarded message:|-{2,} ?forwarded message ?-{2,})[ \t]*$", re.I | re.M)
_HEADER_BLOCK = re.compile(r"(?:[ \t]*\n)*(?:[A-Za-z][A-Za-z0-9\-]*:[^\n]*\n(?:[ \t][^\n]*\n)*)*")


def cut_original(text: str) -> tuple[str, str]:
    """Split a text bounce into (notice, copy of the original message).

    A bounce forwarded by a person ("Begin forwarded message:" and the bounce's own
    From/Date/Subject lines) is read from below those lines: they are not the
    returned message."""
    start = 0
    m = _FORWARDED.search(text, 0, 2000)
    if m:
        start = m.end() + 1
        start += _HEADER_BLOCK.match(text, start).end() - start
    best = len(text)
    low = text.lower()
    m = _ORIGINAL_MARK.search(low if len(low) == len(text) else text, start)
    if m:
        best = m.start()
    m = _HEADER_START.search(text, start, best)
    if m and m.start() > 0:
        best = m.start()
    return text[:best], text[best:]


def read(raw: bytes, depth: int = 0) -> Report:
    """Parse ``raw`` into a Report (never raises on odd input; callers still guard)."""
    text = mime.bytes_to_text(raw)
    root = mime.parse_entity(text)
    headers = root.headers
    subject = mime.decode_words(mime.fix_8bit(headers.get("subject", "")))
    report = Report(headers=headers, subject=subject,
                    sender=signs.addr_of(mime.decode_words(headers.get("from", ""))))

    notices: list[str] = []
    statuses: list[str] = []
    feedback: list[str] = []
    originals: list[str] = []
    for leaf in mime.leaves(root):
        ct = leaf.ctype
        if ct in _REPORT_TYPES or ct == "text/delivery-status":
            statuses.append(leaf.text)
        elif ct == "message/feedback-report":
            feedback.append(leaf.text)
        elif ct in _ORIGINAL_TYPES:
            originals.append(leaf.text)
        elif ct == "text/html":
            if not any(n.strip() for n in notices):
                notices.append(_html_to_text(leaf.text))
        elif ct.startswith("text/") or ct == "message/disposition-notification":
            notices.append(leaf.text)
    notice = _unquote(mime.fix_8bit("\n".join(notices)))
    if not originals or not statuses:
        notice, rest = cut_original(notice)
        if rest:
            originals.append(rest)
    report.notice = notice
    report.original = "\n".join(originals)

    if notice.lstrip().startswith("{") and "notificationType" in notice:
        from .sesjson import read_ses
        if read_ses(report, notice):
            return report
    _, params = mime.content_type(headers.get("content-type"))
    if "x-hmxmroriginalrecipient:" in report.original[:4000].lower():
        arf.read_jmrp(report)
        return report
    if feedback or params.get("report-type", "").lower() == "feedback-report" or \
            (originals and arf.has_nested(root)) or \
            any("feedback-type:" in n[:2000].lower() and arf.fields_in_text(n) for n in notices):
        arf.read(report, root)
        if not report.failures and params.get("report-type", "").lower() == "feedback-report":
            # a report without its machine-readable part (early FBL layouts)
            arf.read(report, mime.Part("multipart/report", {}, "", [
                mime.Part("message/feedback-report", {}, ""),
                mime.Part("message/rfc822", {}, report.original)]))
        if report.failures:
            return report
    if statuses or _DSN_FIELD.search(notice):
        _read_dsn(report, "\n".join(statuses) or notice)
        if report.failures:
            return report
    if autoreply.rfc3834_reply(report):
        return report
    if layouts.read(report):  # a vendor's own layout, read by its format
        return report
    if signs.looks_like_bounce(report):
        plaintext.read_text(report, guess=False)
        if depth == 0 and not any(f.recipient for f in report.failures) and \
                _NESTED_REPORT.search(report.original[:5000]):
            # the notice only wraps the real report (X5, some gateways): read the attached one
            inner = read(report.original.lstrip("\n").encode("utf-8", "surrogateescape"), 1)
            if any(f.recipient for f in inner.failures):
                report.failures, report.form = inner.failures, inner.form
                report.reporting_mta = inner.reporting_mta
        if not any(f.recipient for f in report.failures):
            report.failures = []
            plaintext.read_text(report, guess=True)  # the addresses it merely mentions
        if report.failures:
            return report
    if autoreply.read_autoreply(report):
        return report
    autoreply.read_optout(report)
    return report


# --------------------------------------------------------------------------- formats

# PowerMTA adds X-PowerMTA-BounceCategory to each DSN recipient group (PowerMTA
# User's Guide, "Bounce categories"); only the unambiguous categories are used.
POWERMTA_CATEGORIES = {
    "bad-mailbox": "userunknown",
    "bad-domain": "hostunknown",
    "inactive-mailbox": "suspend",
    "quota-issues": "mailboxfull",
    "message-expired": "expired",
    "relaying-issues": "norelaying",
}


def _read_dsn(report: Report, text: str) -> None:
    message, groups = parse_fields(text)
    report.reporting_mta = strip_type(message.get("reporting-mta", ""))[1]
    wanted = [g for g in groups if g.final or g.original]
    known = {a.lower() for g in wanted for a in (g.final, g.original) if a}
    starts = recipient_starts(report.notice, known) if len(wanted) > 1 else []
    for g in wanted:
        own = {a.lower() for a in (g.final, g.original) if a}
        f = Failure(recipient=(g.final or g.original), action=g.action, status=g.status,
                    diagnostic=textscan.squash(g.diagnostic), diag_type=g.diag_type,
                    remote_mta=g.remote_mta, context=own_text(report.notice, starts, own))
        if g.original and g.final and g.original.lower() != g.final.lower():
            f.alias = g.original
        if not f.recipient or "@" not in f.recipient:
            # Final-Recipient without a domain (local delivery): use the original
            f.recipient = g.original or f.recipient
        _fill_from_text(f, report, starts, own)
        if not f.status or f.status.endswith(".0.0"):
            # the sender MTA's own category decides only when the status code is vague
            f.reason = POWERMTA_CATEGORIES.get(g.category, "")
        report.failures.append(f)
    if report.failures:
        report.form = "dsn"
        _merge_duplicates(report)


def _fill_from_text(f: Failure, report: Report, starts: Sequence[tuple[int, str]] = (),
                    own: Collection[str] = frozenset()) -> None:
    """Complete a DSN group from the notice text where the fields are thin."""
    block = _block_for(report.notice, f.recipient, starts, own)
    if not f.diagnostic and block:
        f.diagnostic = textscan.squash(block)
    diag = f.diagnostic
    code, status = textscan.reply_code(diag)
    f.smtp_code = code
    status = status or textscan.any_status(diag)
    if not f.status or (f.status.endswith(".0.0") and status[:1] == f.status[:1]
                        and not status.endswith(".0.0")):
        f.status = status or f.status  # the remote's own code is more precise than x.0.0
    f.command = textscan.command(diag) or (textscan.command(block) if block else "")
    if not f.remote_mta:
        f.remote_mta = textscan.remote_host(block or diag)


def _block_for(notice: str, address: str, starts: Sequence[tuple[int, str]] = (),
               own: Collection[str] = frozenset()) -> str:
    """Text near ``address`` in the notice (its paragraph and the next one).

    With several recipients (``starts``, ``own``: see recipient_starts), only this
    recipient's own blocks are read (each cut where another recipient's begins, and
    never before its own start), so it never takes another recipient's diagnostic."""
    if not address:
        return ""
    low = notice.lower()
    address = address.lower()
    if not starts:
        return _near(notice, low.find(address), address)
    parts = []
    for i, (pos, who) in enumerate(starts):
        if who not in own:
            continue
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(notice)
        idx = low.find(address, pos, stop)
        part = _near(notice[:stop], idx, address) if idx >= 0 else notice[pos:stop]
        if part.strip():
            parts.append(part.strip("\n"))
    return "\n".join(parts)[:1500]


def _near(notice: str, idx: int, address: str) -> str:
    """The text after ``address`` at ``idx``: its paragraph and the next one."""
    if idx < 0:
        return ""
    end = notice.find("\n\n", idx)
    if end >= 0:
        nxt = notice.find("\n\n", end + 2)
        if nxt < 0:  # the last paragraph runs to the end of the notice
            nxt = len(notice.rstrip("\n"))
        end = nxt if 0 <= nxt - end < 1200 else end
    chunk = notice[idx : end if end >= 0 else idx + 1500]
    return chunk[len(address) :][:1500]


def _merge_duplicates(report: Report) -> None:
    seen: dict[str, Failure] = {}
    out = []
    for f in report.failures:
        key = f.recipient.lower()
        if key and key in seen:
            prev = seen[key]
            for name in ("diagnostic", "status", "smtp_code", "action", "remote_mta", "command"):
                if not getattr(prev, name) and getattr(f, name):
                    setattr(prev, name, getattr(f, name))
            continue
        seen[key] = f
        out.append(f)
    report.failures = out


__all__ = ["cut_original", "normal_status", "read"]
