"""Turn a raw message into a Report: which format it is and what it says per recipient.

Order of trust: structured fields first (RFC 5965 feedback reports, RFC 3464
delivery-status groups, X-Failed-Recipients), then the layouts MTAs use for
human-readable bounces, then RFC 3834 auto-replies. Nothing here decides a reason
except where the format itself says it (feedback, vacation).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from . import arf, layouts, mime, textscan
from .dsn import clean_address, normal_status, parse_fields, strip_type
from .model import Failure, Report

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
_DAEMON = re.compile(
    r"mailer-daemon|mailer_daemon|postmaster|mail delivery|mmdf|smtp gateway|"
    r"bounce|mail ?administrator|mailerdaemon|\bdaemon\b|delivery (?:status|subsystem)|"
    r"nobody@|no-?reply|notify|ms exchange|lotus domino|root@|post_master", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status|fail|report|problem|notification|error)|"
    r"returned mail|return(?:ed|ing) (?:message|mail)|failure notice|mail delivery failed|"
    r"could not be delivered|delivery has failed|non[- ]?remis|nondeliver|non-deliver|"
    r"mail failure|mail system error|failed mail|rejected|unzustellbar|not delivered|"
    r"warning: could not send|message not delivered|delivery notification|delayed mail|"
    r"delivery delayed|mail (?:could not|couldn't) be delivered|error sending|bounce|"
    r"no se pudo entregar|delivery failure|permanent error|loop alert|"
    r"\u30e1\u30fc\u30eb\u30a8\u30e9\u30fc|\u914d\u4fe1\u30a8\u30e9\u30fc|"
    r"\u304a\u5c4a\u3051\u3067\u304d\u307e\u305b\u3093\u3067\u3057\u305f|"
    r"\u8fd4\u4fe1|\u9001\u4fe1\u30a8\u30e9\u30fc|\u30a8\u30e9\u30fc|\u5c4a\u304b", re.I)
# Subjects that auto-responders put first (Exchange/Outlook "Automatic reply:",
# "Out of Office:", Gmail/vacation(1) "Auto:", Domino "AUTO:", and their translations).
_AUTOREPLY_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ \-_]?(?:reply|response|answer|antwort)|auto:|autoreply|"
    r"out of (?:the )?office|on vacation|vacation|away from|abwesenheit|"
    r"r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|autosvar|"
    r"automatisch(?:e)? antwort|absence|I am (?:out|away)|automatische (?:antwort|reactie)|"
    r"fuera de (?:la )?oficina|ausente|fuori (?:sede|ufficio)|afwezig|niet aanwezig|"
    r"poza biurem|odpowied[zź] automatyczna|automaattinen vastaus|automatick[áa] odpov[ěe]d|"
    r"\u4e0d\u5728|\u81ea\u52d5\u5fdc\u7b54|\u81ea\u52a8\u56de\u590d)", re.I)
# What a vacation / out-of-office text says, in the languages auto-responders ship with.
_AUTOREPLY_BODY = re.compile(
    r"out of (?:the )?office|on vacation|away from (?:my|the) (?:desk|office)|"
    r"will be (?:out|away|traveling|travelling|back)|limited access to (?:e-?mail|my)|"
    r"I am (?:currently )?(?:out|away|on (?:\w+ )?leave|on holiday)|auto(?:matic)?[ -]?reply|"
    r"will respond .{0,40}(?:return|when I)|only sleeping|on (?:annual |parental )?leave|"
    r"abwesend|nicht im (?:b[üu]ro|hause|haus)|au[ßs]er haus|im urlaub|in urlaub|"
    r"bin (?:ab|bis|vom) .{0,60}(?:nicht erreichbar|abwesend|nicht im)|automatische antwort|"
    r"absente? (?:du bureau|jusqu|du \d)|je suis absente?|en cong[ée]s?|hors du bureau|"
    r"de retour (?:le|au|lundi|mardi|mercredi|jeudi|vendredi)|r[ée]ponse automatique|"
    r"fuera de (?:la )?oficina|estar[ée] ausente|de vacaciones|fuori (?:sede|ufficio)|"
    r"sar[òo] assente|in ferie|niet op kantoor|afwezig|met vakantie", re.I)
_X_FAILED = ("x-failed-recipients", "x-failed-recipient")
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


def _addr_of(value: str) -> str:
    found = textscan.addresses(value or "")
    return found[-1].lower() if found else ""


def read(raw: bytes, depth: int = 0) -> Report:
    """Parse ``raw`` into a Report (never raises on odd input; callers still guard)."""
    text = mime.bytes_to_text(raw)
    root = mime.parse_entity(text)
    headers = root.headers
    subject = mime.decode_words(mime.fix_8bit(headers.get("subject", "")))
    report = Report(headers=headers, subject=subject,
                    sender=_addr_of(mime.decode_words(headers.get("from", ""))))

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
    if _rfc3834_reply(report):
        return report
    if layouts.read(report):  # a vendor's own layout, read by its format
        return report
    if _looks_like_bounce(report):
        _read_text(report, guess=False)
        if depth == 0 and not any(f.recipient for f in report.failures) and \
                _NESTED_REPORT.search(report.original[:5000]):
            # the notice only wraps the real report (X5, some gateways): read the attached one
            inner = read(report.original.lstrip("\n").encode("utf-8", "surrogateescape"), 1)
            if any(f.recipient for f in inner.failures):
                report.failures, report.form = inner.failures, inner.form
                report.reporting_mta = inner.reporting_mta
        if not any(f.recipient for f in report.failures):
            report.failures = []
            _read_text(report, guess=True)  # the addresses it merely mentions
        if report.failures:
            return report
    if _read_autoreply(report):
        return report
    _read_optout(report)
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


# A DSN recipient group's first line (RFC 3464 section 2.3), also when the fields are
# read from the notice text (an indented boundary, fields pasted into a text part).
_DSN_RCPT_LINE = re.compile(r"^[ \t>]*(?:final|original)-recipient[ \t]*:([^\n]*)", re.I | re.M)


def recipient_starts(notice: str, known: set[str]) -> list[tuple[int, str]]:
    """Where each recipient's own text begins in the notice, in order, as (offset,
    address): a Final-/Original-Recipient line, or a line that starts with one of the
    ``known`` recipient addresses. One recipient's text ends where another's begins."""
    found: dict[int, str] = {}
    if "-recipient" in notice.lower():
        for m in _DSN_RCPT_LINE.finditer(notice):
            addr = clean_address(strip_type(m.group(1))[1]).lower()
            if addr:
                found[m.start()] = addr
    for m in _BLOCK_START.finditer(notice):
        addr = clean_recipient(m.group("a"))
        if addr in known:
            found.setdefault(m.start(), addr)
    return sorted(found.items())


def own_text(notice: str, starts: Sequence[tuple[int, str]], own: Collection[str]) -> str:
    """The notice as one recipient sees it: the text before any recipient's block (it
    speaks for all of them) and the blocks of this recipient (``own``: its addresses),
    without the blocks of the others. Without ``starts``, the whole notice."""
    if not starts:
        return notice
    parts = [notice[: starts[0][0]]]
    for i, (pos, who) in enumerate(starts):
        if who in own:
            parts.append(notice[pos : starts[i + 1][0] if i + 1 < len(starts) else len(notice)])
    return "".join(parts)


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


def _looks_like_bounce(report: Report) -> bool:
    h = report.headers
    if any(k in h for k in _X_FAILED):
        return True
    frm = h.get("from", "") + " " + h.get("return-path", "")
    if _DAEMON.search(frm) or _BOUNCE_SUBJECT.search(report.subject):
        return True
    return bool(report.notice) and bool(_TEXT_FAILURE.search(report.notice))


_TEXT_FAILURE = re.compile(
    r"could not be delivered|was not delivered|couldn't be delivered|"
    r"unable to deliver|undeliverable|delivery (?:has )?failed|permanent(?:ly)? (?:error|fatal)|"
    r"following (?:address|recipient)[^\n]{0,20}(?:failed|could not)|"
    r"did not reach the following|delivery to the following recipient", re.I)

# A line that names a failed recipient and what may follow it on that line:
# "addr", "<addr>:", "\"addr\":", ">>> addr", "addr on <date>", "addr [reason]",
# "550 addr... reason" (sendmail transcripts), "addr: reason" (OpenSMTPD).
_BLOCK_START = re.compile(
    r"^[ \t>*\-]*(?:\d{3}[ \-](?:\d\.\d{1,3}\.\d{1,3} )?)?[<\"']?(?P<a>"
    + textscan.ADDRESS.pattern + r")[>\"']?(?P<rest>(?:\.\.\.|:|\s+\S|[ \t]*$)[^\n]*)$", re.M)
# "550 <addr>... User unknown": sendmail's transcript line for a refused RCPT TO.
_TRANSCRIPT_RCPT = re.compile(
    r"^[ \t>]*[45]\d\d[ \-](?:[45]\.\d{1,3}\.\d{1,3} )?<[^>\s]+@[^>\s]+>\.\.\. ")
_TALKING_TO = re.compile(r"^[ \t]*(?:\.\.\. )?while talking to [^\n]*:\s*$", re.I)
_RULE_LINE = re.compile(r"^[ \t]*(?:-{3,}|={3,}|\*{3,}|_{3,})")
_HAS_CODE = re.compile(r"(?<![\d.])[45]\d\d[ \-]+(?:[45]\.\d|[A-Za-z<])|"
                       r"(?<![\d.])[45]\.\d{1,3}\.\d{1,3}(?![\d.])")
_REPLY_LINE = re.compile(r"^[ \t]*[45]\d\d[ \-](?:[45]\.\d{1,3}\.\d{1,3} )?[^\n]{3,200}$", re.M)
# The notice itself says the failure is final: Exim "This is a permanent error.",
# Sendmail "The following addresses had permanent fatal errors".
_PERMANENT_NOTICE = re.compile(r"this is a permanent error|permanent fatal errors?\b", re.I)
# A sentence or field that names the failed recipient: "could not be delivered to X",
# "Recipient: X", "Delivery to: X", "Failed recipient: 'X'", a transcript's "RCPT TO:<X>".
# The address may sit in angle brackets or quotes (a leading ' is stripped after).
_SENTENCE_RCPT = re.compile(
    r"(?:delivering your (?:mail|message) to|(?:could not|couldn't|can ?not|cannot|unable to) "
    r"(?:be )?deliver(?:ed)?(?: your message| the message| this message)?(?: to)?:?|"
    r"delivery to|message to|(?:failed |original |intended )?recipient(?:\(s\))?:?|"
    r"recipients?:|address(?:es)?:|userid:|rcpt to:?|"
    r"addressed to|destinataire|\bto:|for)[ \t]*:?[ \t]*[<\"']*(?P<a>"
    + textscan.ADDRESS.pattern + r")[>\"']?",
    re.I)
# Role addresses a notice names for help, not as the failed recipient.
_ROLE = frozenset({"postmaster", "abuse", "hostmaster", "webmaster", "noreply", "no-reply",
                   "helpdesk", "support"})


def clean_recipient(addr: str) -> str:
    """An address read from free text, without the quotes and punctuation around it."""
    return addr.strip().strip("<>").lstrip("'\"`").rstrip("'\".,;:>)").lower()


def _read_text(report: Report, guess: bool = True) -> None:
    notice = report.notice
    own = {report.sender, _addr_of(report.headers.get("to", "")),
           _addr_of(report.headers.get("reply-to", ""))}
    own.discard("")
    blocks: list[tuple[str, list[str]]] = []
    order: dict[str, int] = {}
    lines = notice.split("\n")
    current: list[str] | None = None
    # Sendmail session transcripts: "While talking to HOST:", ">>> CMD", "<<< reply" come
    # *before* the "550 <addr>... text" line they explain; lines after it belong to the
    # next recipient (or to another host), never to this one.
    pending: list[str] | None = None
    para: list[str] = []  # the current paragraph, for a reason written above the address
    before: dict[str, list[str]] = {}
    for line in lines:
        m = _BLOCK_START.match(line)
        addr = clean_recipient(m.group("a")) if m else ""
        if m and addr != report.sender and not _is_daemon_addr(addr):
            transcript = _TRANSCRIPT_RCPT.match(line) is not None
            if addr in order:
                current = blocks[order[addr]][1]
            else:
                order[addr] = len(blocks)
                current = []
                blocks.append((addr, current))
            rest = m.group("rest").strip()
            if transcript:
                said = [x.strip() for x in pending or () if x.strip()][-12:]
                current.extend(said)
                current.append(line.strip())
                if not any(x.startswith(">>>") for x in said):
                    current.append("(in reply to RCPT TO command)")
                current, pending = None, []
                continue
            pending = None
            if rest:
                current.append(line.strip())
            elif addr not in before:
                # Lotus Notes, MailMarshal...: the reason is written above the address
                before[addr] = [x.strip() for x in para
                                if x.strip() and not _RULE_LINE.match(x)
                                and not _BLOCK_START.match(x)][-3:]
            continue
        if _TALKING_TO.match(line):
            current, pending = None, [line]
            continue
        if not line.strip():
            para = []
        else:
            para.append(line)
        if pending is not None:
            pending.append(line)
        elif current is not None and len(current) < 40:
            current.append(line)
    if all(a.split("@", 1)[0] in _ROLE for a, _ in blocks):
        # nothing but help addresses at line starts: the sentences say who failed
        for m in _SENTENCE_RCPT.finditer(notice):
            addr = clean_recipient(m.group("a"))
            if addr not in own and not _is_daemon_addr(addr) and addr not in order:
                order[addr] = len(blocks)
                # the sentence itself stays in: ">>> RCPT TO:<x>" names the command
                line = notice.rfind("\n", 0, m.start()) + 1
                blocks.append((addr, [notice[line : m.end() + 1500]]))
    if guess and not blocks and not any(k in report.headers for k in _X_FAILED):
        blocks = _mentioned(report, own)
    blocks = _prefer_failed(blocks)
    failed = []
    for k in _X_FAILED:
        if k in report.headers:
            failed = [a.lower() for a in textscan.addresses(report.headers[k])]
            break
    if failed:
        texts = {a: "\n".join(b) for a, b in blocks}
        pairs = [(a, texts.get(a, "")) for a in dict.fromkeys(failed)]
    else:
        pairs = [(a, "\n".join(b)) for a, b in blocks]
    if not pairs:
        pairs = [("", "")]
    permanent = bool(_PERMANENT_NOTICE.search(notice))
    # several recipients: each one reads the notice without the others' blocks
    starts = recipient_starts(notice, {a for a, _ in pairs}) if len(pairs) > 1 else []
    for addr, block in pairs:
        context = own_text(notice, starts, {addr})
        diag = textscan.squash(_trim_block(block)) if block else ""
        if not _HAS_CODE.search(diag):
            # no reply code near the address: the notice's own reason (its text before
            # the recipients, or this recipient's own block)
            m = _REPLY_LINE.search(context)
            reply_line = textscan.squash(m.group(0)) if m else ""
            said = " ".join(before.get(addr, ()))
            diag = " ".join(x for x in (reply_line, said, diag) if x)
        f = Failure(recipient=addr, diagnostic=diag, context=context,
                    action="failed" if permanent else "")
        code, status = textscan.reply_code(diag)
        f.smtp_code, f.status = code, status or textscan.any_status(diag)
        f.command = textscan.command(diag)
        f.remote_mta = textscan.remote_host(block or notice)
        report.failures.append(f)
    report.form = "text"


_SENDER_MENTION = re.compile(r"(?:\bfrom|sender|sent by|reply to|envelope-from)[:\s]*[<\"']*$",
                             re.I)


def _mentioned(report: Report, own: set[str]) -> list[tuple[str, list[str]]]:
    """No line or sentence named the recipient: the addresses the notice mentions that
    are not the sender side (the report's own, the returned message's From/Sender/
    Return-Path, an address written after "from"/"sender"), else the returned
    message's own To when it names one address (a newsletter goes to one reader)."""
    notice = report.notice
    head, _ = mime.split_head_body(report.original.lstrip("\n"))
    ohdrs = mime.parse_headers(head) if head else {}
    ours = set(own)
    for name in ("from", "sender", "return-path", "reply-to"):
        ours.update(a.lower() for a in textscan.addresses(ohdrs.get(name, "")))
    found: dict[str, list[str]] = {}
    for m in textscan.ADDRESS.finditer(notice):
        addr = clean_recipient(m.group(0))
        if addr in ours or _is_daemon_addr(addr) or addr.split("@", 1)[0] in _ROLE:
            continue
        if _SENDER_MENTION.search(notice[max(0, m.start() - 20): m.start()]):
            continue
        found.setdefault(addr, [notice[m.end(): m.end() + 1500]])
        if len(found) >= 5:
            break
    if not found and ohdrs:
        to = [clean_recipient(a) for a in textscan.addresses(
            mime.decode_words(ohdrs.get("to", "")))]
        to = [a for a in dict.fromkeys(to) if a not in ours]
        if len(to) == 1:
            found[to[0]] = [""]
    return list(found.items())


def _prefer_failed(blocks: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """With several candidates, the ones the notice says failed: role addresses it names
    for help (postmaster@, abuse@) go when another remains. (An address with no text of
    its own stays: a list of recipients over one reason shares that reason.)"""
    if len(blocks) < 2:
        return blocks
    return [b for b in blocks if b[0].split("@", 1)[0] not in _ROLE] or blocks


def _trim_block(block: str) -> str:
    """A recipient's paragraph(s): stop at two blank lines in a row."""
    out: list[str] = []
    blank = 0
    for line in block.split("\n"):
        if not line.strip():
            blank += 1
            if blank >= 2 and any(x.strip() for x in out):
                break
            continue
        blank = 0
        out.append(line)
    return "\n".join(out)


def _is_daemon_addr(addr: str) -> bool:
    local = addr.split("@", 1)[0]
    return local in ("mailer-daemon", "mailer_daemon", "maildaemon")


# RFC 3834 section 5: "Auto-Submitted: auto-replied" marks a response an automatic
# responder generated; some responders mark theirs with their own headers instead.
# A delivery report also carries it (RFC 3464 reports are auto-replied), so it counts
# only from a sender that is not the mail system and when no bounce layout applies.
_MAIL_SYSTEM = re.compile(r"mailer[-_]?daemon|postmaster|mail delivery|mail system", re.I)


def _rfc3834_reply(report: Report) -> bool:
    h = report.headers
    auto = h.get("auto-submitted", "").lower()
    marked = ("auto-replied" in auto or "x-autoreply" in h or "x-autorespond" in h
              or h.get("precedence", "").lower() == "auto_reply")
    if not marked:
        # unmarked responders: an out-of-office subject and an out-of-office text
        marked = bool(_AUTOREPLY_SUBJECT.search(report.subject)) and \
            bool(_AUTOREPLY_BODY.search(report.notice[:2000]))
    if not marked or any(k in h for k in _X_FAILED) or _MAIL_SYSTEM.search(h.get("from", "")):
        return False
    if _is_optout(report):  # a mail client's unsubscribe mail, sent automatically
        return False
    if _BOUNCE_SUBJECT.search(report.subject) and not _AUTOREPLY_SUBJECT.search(report.subject):
        return False
    if _TEXT_FAILURE.search(report.notice[:2000]) and \
            not _AUTOREPLY_BODY.search(report.notice[:2000]):
        return False
    rcpt = report.sender or _addr_of(h.get("reply-to", ""))
    report.failures.append(Failure(recipient=rcpt, reason="vacation",
                                   diagnostic=textscan.squash(report.notice)[:300]))
    report.form = "autoreply"
    return True


def _read_autoreply(report: Report) -> bool:
    h = report.headers
    auto = h.get("auto-submitted", "").lower()
    flagged = ("auto-replied" in auto or "x-autoreply" in h or "x-autorespond" in h
               or h.get("precedence", "").lower() == "auto_reply"
               or "x-auto-response-suppress" in h or "x-autoreply-from" in h)
    subject_hit = bool(_AUTOREPLY_SUBJECT.search(report.subject))
    if not (subject_hit or (flagged and _AUTOREPLY_BODY.search(report.notice))):
        return False
    if _DAEMON.search(h.get("from", "")):
        return False
    rcpt = report.sender or _addr_of(h.get("reply-to", ""))
    report.failures.append(Failure(recipient=rcpt, reason="vacation",
                                   diagnostic=textscan.squash(report.notice)[:300]))
    report.form = "autoreply"
    return True


_OPTOUT = re.compile(r"sent this (?:e-?mail|message) to unsubscribe|unsubscribe request", re.I)


def _is_optout(report: Report) -> bool:
    return report.subject.strip().lower() == "unsubscribe" or \
        bool(_OPTOUT.search(report.notice[:500]))


def _read_optout(report: Report) -> None:
    """Mail clients' one-click unsubscribe mails (Apple Mail) are opt-out feedback."""
    if _is_optout(report):
        report.failures.append(Failure(recipient=report.sender, reason="feedback",
                                       feedback_type="opt-out",
                                       diagnostic=textscan.squash(report.notice)[:300]))
        report.form = "arf"


__all__ = ["cut_original", "normal_status", "read"]
