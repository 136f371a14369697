"""Helpers that read facts out of free text: addresses, reply codes, commands, hosts."""

from __future__ import annotations

import re

from .dsn import normal_status

ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}\b")
# "550 5.1.1 text", "550-5.1.1 text", "550 text", "#5.1.1"
_REPLY = re.compile(r"(?<![\d.\-])([245]\d\d)(?:[ \-]|$)(?:#?([245]\.\d{1,3}\.\d{1,3})\b)?")
_STATUS_ANY = re.compile(r"(?<![\d.])#?([245]\.\d{1,3}\.\d{1,3})(?![\d.]*\d)")
_COMMAND_CONTEXT = re.compile(
    r"(?:after|in reply to|did not like our|while (?:talking|sending)|error (?:after|at)|"
    r"responding to|response to|rejected (?:at|after|by)|\[)\s*(?:the\s+)?"
    r"(?:(end of data|final data|data|rcpt to|rcpt_to|rcpt|mail from|mail_from|helo|ehlo|"
    r"initial connection|message content|connect)\b)|>>> ?(data|rcpt|mail|helo|ehlo)\b|"
    r"\b(?:in|at) (rcpt to|mail from|data)\b|\bsmtp:(rcpt|mail|data)\b")
# qmail-remote "does not like recipient", Yahoo's "[RCPT_TO]", Messaging Server's
# "Remote SMTP server has rejected address" (its DSN template's reason for a refused RCPT)
_RCPT_HINT = re.compile(r"does not like recipient|\brcpt_to\b|server has rejected address")
_QMAIL_MAIL = re.compile(r"sender was rejected|connected to .{1,80} but sender")
_QMAIL_CONN = re.compile(r"(?:greeting failed|connected to .{1,80} but greeting)")
_QMAIL_HELO = re.compile(r"but my name was rejected")
_HOST_SAID = re.compile(
    r"(?:host|server|mta)\s+([A-Za-z0-9.\-]+\.[A-Za-z]{2,}|\[[0-9a-fA-F.:]+\])"
    r"(?:\s*\[([0-9a-fA-F.:]+)\])?\s*(?:said|says|:|replied|refused|returned)", re.I)
_CONNECTED_TO = re.compile(r"[Cc]onnected to ([0-9a-fA-F.:]+|[A-Za-z0-9.\-]+\.[A-Za-z]{2,})")
_WS = re.compile(r"\s+")


def addresses(text: str) -> list[str]:
    return ADDRESS.findall(text)


def reply_code(text: str) -> tuple[str, str]:
    """First SMTP reply code and enhanced status in ``text`` -> ("550", "5.1.1").

    In a session transcript ("Out: 250 2.1.5 Ok ... Out: 451 4.3.0 Error") the first
    failure reply (4xx/5xx) is the one that matters, not the positive replies before it.
    """
    first = None
    for m in _REPLY.finditer(text):
        code = m.group(1)
        status = m.group(2) or ""
        if status and status[0] != code[0]:
            status = ""
        if code[0] in "45":
            return code, status
        if first is None:
            first = (code, status)
    return first or ("", "")


def any_status(text: str) -> str:
    m = _STATUS_ANY.search(text)
    return normal_status(m.group(1)) if m else ""


def command(text: str) -> str:
    """The SMTP command an error answered, when the text names it."""
    text = text.lower()
    m = _COMMAND_CONTEXT.search(text)
    if m:
        word = next(g for g in m.groups() if g).lower().replace("_", " ")
        if word in ("end of data", "final data", "data", "message content"):
            return "DATA"
        if word.startswith("rcpt"):
            return "RCPT"
        if word.startswith("mail"):
            return "MAIL"
        if word in ("helo", "ehlo"):
            return "HELO"
        return "CONN"
    # literal prefilters: each regex below needs its word, and most texts have none
    if ("recipient" in text or "rcpt_to" in text or "rejected address" in text) and \
            _RCPT_HINT.search(text):
        return "RCPT"
    if "sender" in text and _QMAIL_MAIL.search(text):
        return "MAIL"
    if "greeting" in text and _QMAIL_CONN.search(text):
        return "CONN"
    if "my name" in text and _QMAIL_HELO.search(text):
        return "HELO"
    return ""


def remote_host(text: str) -> str:
    m = _HOST_SAID.search(text)
    if m:
        return m.group(1).strip("[]")
    m = _CONNECTED_TO.search(text)
    return m.group(1) if m else ""


def squash(text: str) -> str:
    """One line, single spaces."""
    return _WS.sub(" ", text).strip()
