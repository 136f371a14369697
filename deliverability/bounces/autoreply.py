"""Automatic replies (RFC 3834) and mail clients' unsubscribe mails: never bounces."""

from __future__ import annotations

import re

from . import textscan
from .model import Failure, Report
from .signs import BOUNCE_SUBJECT, DAEMON, TEXT_FAILURE, X_FAILED, addr_of

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


# RFC 3834 section 5: "Auto-Submitted: auto-replied" marks a response an automatic
# responder generated; some responders mark theirs with their own headers instead.
# A delivery report also carries it (RFC 3464 reports are auto-replied), so it counts
# only from a sender that is not the mail system and when no bounce layout applies.
_MAIL_SYSTEM = re.compile(r"mailer[-_]?daemon|postmaster|mail delivery|mail system", re.I)


def rfc3834_reply(report: Report) -> bool:
    h = report.headers
    auto = h.get("auto-submitted", "").lower()
    marked = ("auto-replied" in auto or "x-autoreply" in h or "x-autorespond" in h
              or h.get("precedence", "").lower() == "auto_reply")
    if not marked:
        # unmarked responders: an out-of-office subject and an out-of-office text
        marked = bool(_AUTOREPLY_SUBJECT.search(report.subject)) and \
            bool(_AUTOREPLY_BODY.search(report.notice[:2000]))
    if not marked or any(k in h for k in X_FAILED) or _MAIL_SYSTEM.search(h.get("from", "")):
        return False
    if is_optout(report):  # a mail client's unsubscribe mail, sent automatically
        return False
    if BOUNCE_SUBJECT.search(report.subject) and not _AUTOREPLY_SUBJECT.search(report.subject):
        return False
    if TEXT_FAILURE.search(report.notice[:2000]) and \
            not _AUTOREPLY_BODY.search(report.notice[:2000]):
        return False
    rcpt = report.sender or addr_of(h.get("reply-to", ""))
    report.failures.append(Failure(recipient=rcpt, reason="vacation",
                                   diagnostic=textscan.squash(report.notice)[:300]))
    report.form = "autoreply"
    return True


def read_autoreply(report: Report) -> bool:
    h = report.headers
    auto = h.get("auto-submitted", "").lower()
    flagged = ("auto-replied" in auto or "x-autoreply" in h or "x-autorespond" in h
               or h.get("precedence", "").lower() == "auto_reply"
               or "x-auto-response-suppress" in h or "x-autoreply-from" in h)
    subject_hit = bool(_AUTOREPLY_SUBJECT.search(report.subject))
    if not (subject_hit or (flagged and _AUTOREPLY_BODY.search(report.notice))):
        return False
    if DAEMON.search(h.get("from", "")):
        return False
    rcpt = report.sender or addr_of(h.get("reply-to", ""))
    report.failures.append(Failure(recipient=rcpt, reason="vacation",
                                   diagnostic=textscan.squash(report.notice)[:300]))
    report.form = "autoreply"
    return True


_OPTOUT = re.compile(r"sent this (?:e-?mail|message) to unsubscribe|unsubscribe request", re.I)


def is_optout(report: Report) -> bool:
    return report.subject.strip().lower() == "unsubscribe" or \
        bool(_OPTOUT.search(report.notice[:500]))


def read_optout(report: Report) -> None:
    """Mail clients' one-click unsubscribe mails (Apple Mail) are opt-out feedback."""
    if is_optout(report):
        report.failures.append(Failure(recipient=report.sender, reason="feedback",
                                       feedback_type="opt-out",
                                       diagnostic=textscan.squash(report.notice)[:300]))
        report.form = "arf"
