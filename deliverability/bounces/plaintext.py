"""Plain-text bounce notices (no RFC 3464 part): who failed and what was said for each.

The layouts MTAs use for human-readable bounces: a line that starts with the failed
address (Exim, qmail, OpenSMTPD, Sendmail's "permanent fatal errors" list), Sendmail's
session transcript, the reason written above the address (Lotus Notes, MailMarshal),
sentences and fields that name the recipient ("could not be delivered to X",
"Recipient: X"), and as a last resort the addresses the notice only mentions.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from . import mime, textscan
from .dsn import clean_address, strip_type
from .model import Failure, Report
from .signs import X_FAILED, addr_of

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


def read_text(report: Report, guess: bool = True) -> None:
    """Fill ``report`` with one failure per recipient the notice names."""
    notice = report.notice
    own = {report.sender, addr_of(report.headers.get("to", "")),
           addr_of(report.headers.get("reply-to", ""))}
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
    if guess and not blocks and not any(k in report.headers for k in X_FAILED):
        blocks = _mentioned(report, own)
    blocks = _prefer_failed(blocks)
    failed = []
    for k in X_FAILED:
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
