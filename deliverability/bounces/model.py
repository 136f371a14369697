"""The shapes that parsing hands to classification."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Failure:
    """What a report says about one recipient, before any judgement."""

    recipient: str = ""
    alias: str = ""  # DSN Original-Recipient when it differs
    action: str = ""  # failed, delayed, delivered, relayed, expanded
    status: str = ""  # enhanced status code, "5.1.1"
    smtp_code: str = ""  # reply code, "550"
    diagnostic: str = ""  # the remote server's words
    diag_type: str = ""  # smtp, x-unix, ...
    remote_mta: str = ""
    command: str = ""  # SMTP command the error answered: CONN HELO MAIL RCPT DATA
    reason: str = ""  # preset by the format itself (feedback, vacation)
    feedback_type: str = ""
    context: str = ""  # wider text (the whole notice) for a second look
    # a feedback report's reported message: its Return-Path (our VERP address) and
    # Message-ID, so each of several reports can be tied to its own delivery
    reported_return_path: str = ""
    reported_message_id: str = ""


@dataclass(slots=True)
class Report:
    """A parsed message: its headers, the notice text and the failures found."""

    headers: dict[str, str]
    subject: str = ""
    sender: str = ""  # From of the report
    notice: str = ""  # the human-readable part
    original: str = ""  # the returned message (or its headers)
    reporting_mta: str = ""
    form: str = "none"  # dsn, arf, autoreply, text, none
    failures: list[Failure] = field(default_factory=list)
