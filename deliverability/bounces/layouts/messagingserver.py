"""Sun Java System / Oracle Communications Messaging Server (formerly iPlanet, Netscape).

Its delivery notifications come from the notification templates documented in the
Messaging Server Administration Guide ("Customizing delivery status notification
messages", ``return_*.txt``): per recipient a block of labelled lines

    Recipient address: <address>
    Original address: <address>
    Reason: <the MTA's reason>
    Diagnostic code: smtp;550 5.1.1 ...
    Remote system: dns;<host> (...)

Usually an RFC 3464 part comes along and is read first; this reads the text alone.
"""

from __future__ import annotations

import re

from ..model import Failure, Report
from ._common import failure

NAME = "messagingserver"
SOURCE = "Oracle Communications Messaging Server Administration Guide, DSN templates"
_RCPT = re.compile(r"^[ \t]*recipient address:[ \t]*<?([^\s>]+@[^\s>]+)>?", re.I | re.M)
_LABEL = re.compile(r"^[ \t]*(original address|reason|diagnostic code|remote system):[ \t]*"
                    r"(.*)$", re.I | re.M)
# The template's fixed reasons that say which SMTP step failed.
_RCPT_REASONS = ("remote smtp server has rejected address", "invalid recipient",
                 "user unknown", "no such user")


def detect(report: Report) -> bool:
    return bool(_RCPT.search(report.notice)) and "reason:" in report.notice.lower()


def parse(report: Report) -> list[Failure]:
    notice = report.notice
    starts = list(_RCPT.finditer(notice))
    out = []
    for i, m in enumerate(starts):
        block = notice[m.end(): starts[i + 1].start() if i + 1 < len(starts) else len(notice)]
        fields = {k.lower(): v.strip() for k, v in _LABEL.findall(block)}
        reason = fields.get("reason", "")
        diag = fields.get("diagnostic code", "").partition(";")[2] or \
            fields.get("diagnostic code", "")
        text = f"{diag} {reason}".strip()
        command = "RCPT" if any(r in reason.lower() for r in _RCPT_REASONS) else ""
        f = failure(m.group(1), text, command=command,
                    remote_mta=fields.get("remote system", "").partition(";")[2].split(" ")[0])
        orig = fields.get("original address", "").strip("<>")
        if orig and orig.lower() != f.recipient:
            f.alias = orig
        out.append(f)
    return out
