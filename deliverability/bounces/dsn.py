"""RFC 3464 delivery-status fields, wherever they appear.

Most MTAs send them in a ``message/delivery-status`` part, but some put the same
fields into the text part (Amazon WorkMail, some Postfix and Exchange builds), so
the reader works on any text and looks for per-recipient groups.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELD = re.compile(r"^([A-Za-z][A-Za-z0-9\-]{1,40})[ \t]*:[ \t]*(.*)$")
_PER_RECIPIENT = frozenset({
    "original-recipient", "final-recipient", "action", "status", "remote-mta",
    "diagnostic-code", "last-attempt-date", "final-log-id", "will-retry-until",
    "x-actual-recipient", "x-display-name", "x-supplementary-info",
    "x-powermta-bouncecategory",
})
_PER_MESSAGE = frozenset({"reporting-mta", "received-from-mta", "arrival-date",
                          "original-envelope-id", "dsn-gateway", "x-postfix-sender",
                          "x-original-message-id"})
_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


@dataclass(slots=True)
class DsnRecipient:
    final: str = ""
    original: str = ""
    action: str = ""
    status: str = ""
    remote_mta: str = ""
    diagnostic: str = ""
    diag_type: str = ""
    category: str = ""  # X-PowerMTA-BounceCategory (bad-mailbox, quota-issues, ...)


def strip_type(value: str) -> tuple[str, str]:
    """``rfc822; a@b`` -> ("rfc822", "a@b"); values without a type keep it empty."""
    kind, sep, rest = value.partition(";")
    if sep and len(kind) < 20 and " " not in kind.strip():
        return kind.strip().lower(), rest.strip()
    return "", value.strip()


def clean_address(value: str) -> str:
    value = value.strip().strip("<>").strip().strip('"').strip()
    if value.lower().startswith("rfc822;"):
        value = value[7:].strip().strip("<>")
    return value


def normal_status(value: str) -> str:
    m = _STATUS.search(value or "")
    return f"{m.group(1)}.{m.group(2)}.{m.group(3)}" if m else ""


def _unfold(text: str) -> list[tuple[str, str]]:
    """Fields in order as (name, value); continuation lines joined."""
    fields: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line.strip():
            fields.append(("", ""))  # a blank line separates recipient groups
            continue
        if line[:1] in (" ", "\t") and fields and fields[-1][0]:
            name, value = fields[-1]
            fields[-1] = (name, value + " " + line.strip())
            continue
        m = _FIELD.match(line)
        if m:
            fields.append((m.group(1).lower(), m.group(2).strip()))
        else:
            fields.append(("?", line.strip()))
    return fields


def parse_fields(text: str) -> tuple[dict[str, str], list[DsnRecipient]]:
    """Per-message fields and the per-recipient groups found in ``text``."""
    message: dict[str, str] = {}
    recipients: list[DsnRecipient] = []
    cur: DsnRecipient | None = None
    closed = False  # a blank line after a complete group: the next field starts a new one
    for name, value in _unfold(text):
        if name in _PER_MESSAGE:
            message.setdefault(name, value)
            continue
        if name == "":
            closed = cur is not None and bool(cur.final or cur.original)
            continue
        if name == "?":
            continue
        if name not in _PER_RECIPIENT:
            continue
        if cur is None or closed:
            cur = DsnRecipient()
            recipients.append(cur)
            closed = False
        if name in ("original-recipient", "final-recipient"):
            addr = clean_address(strip_type(value)[1])
            if name == "final-recipient":
                if cur.final:  # groups not separated by a blank line
                    cur = DsnRecipient()
                    recipients.append(cur)
                cur.final = addr
            else:
                if cur.original or (cur.final and (cur.status or cur.diagnostic)):
                    cur = DsnRecipient()
                    recipients.append(cur)
                cur.original = addr
        elif name == "action":
            if value and not cur.action:
                cur.action = value.split()[0].lower()
        elif name == "status":
            cur.status = cur.status or normal_status(value)
        elif name == "remote-mta":
            cur.remote_mta = cur.remote_mta or strip_type(value)[1]
        elif name == "diagnostic-code":
            if not cur.diagnostic:
                cur.diag_type, cur.diagnostic = strip_type(value)
        elif name == "x-powermta-bouncecategory":
            cur.category = cur.category or value.strip().lower()
        elif name == "x-actual-recipient" and not cur.final:
            cur.final = clean_address(strip_type(value)[1])
    recipients = [r for r in recipients if r.final or r.original or r.status or r.diagnostic]
    return message, recipients
