"""What marks a message as a bounce before any format is read: the sender, the subject,
the words of the notice, X-Failed-Recipients (Exim, and others copying it)."""

from __future__ import annotations

import re

from . import textscan
from .model import Report

DAEMON = re.compile(
    r"mailer-daemon|mailer_daemon|postmaster|mail delivery|mmdf|smtp gateway|"
    r"bounce|mail ?administrator|mailerdaemon|\bdaemon\b|delivery (?:status|subsystem)|"
    r"nobody@|no-?reply|notify|ms exchange|lotus domino|root@|post_master", re.I)
BOUNCE_SUBJECT = re.compile(
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

X_FAILED = ("x-failed-recipients", "x-failed-recipient")

TEXT_FAILURE = re.compile(
    r"could not be delivered|was not delivered|couldn't be delivered|"
    r"unable to deliver|undeliverable|delivery (?:has )?failed|permanent(?:ly)? (?:error|fatal)|"
    r"following (?:address|recipient)[^\n]{0,20}(?:failed|could not)|"
    r"did not reach the following|delivery to the following recipient", re.I)



def addr_of(value: str) -> str:
    found = textscan.addresses(value or "")
    return found[-1].lower() if found else ""


def looks_like_bounce(report: Report) -> bool:
    h = report.headers
    if any(k in h for k in X_FAILED):
        return True
    frm = h.get("from", "") + " " + h.get("return-path", "")
    if DAEMON.search(frm) or BOUNCE_SUBJECT.search(report.subject):
        return True
    return bool(report.notice) and bool(TEXT_FAILURE.search(report.notice))
