"""Trend Micro InterScan Messaging Security Suite / Virtual Appliance.

Its "Mail could not be delivered" notice (InterScan MSS administrator's guide,
"Delivery status notifications") quotes the SMTP exchange in its own arrows:

    Sent <<< RCPT TO:<address>
    Received >>> 550 5.1.1 <address>... User unknown

or states "Unable to deliver message to <address>" with the reason below it.
"""

from __future__ import annotations

import re

from ..model import Failure, Report
from ._common import failure

NAME = "interscan"
SOURCE = "Trend Micro InterScan Messaging Security administrator's guide, DSN layout"
# either arrow direction: releases differ in which way they point
_SENT = re.compile(r"^[ \t]*sent (?:<<<|>>>)[ \t]*(rcpt to|mail from|data|ehlo|helo)\b:?[ \t]*"
                   r"<?([^\s>]*)>?[ \t]*$", re.I | re.M)
_RECEIVED = re.compile(r"^[ \t]*received (?:>>>|<<<)[ \t]*(.*)$", re.I | re.M)
_UNABLE = re.compile(r"unable to deliver (?:the )?message to <?([^\s<>]+@[^\s<>]+?)>?[ .,(]",
                     re.I)


def detect(report: Report) -> bool:
    low = report.notice[:4000].lower()
    if ("received >>>" in low or "received <<<" in low) and "sent " in low:
        return True
    return ("interscan" in low or "trend micro" in low) and "unable to deliver" in low


def parse(report: Report) -> list[Failure]:
    notice = report.notice
    out: list[Failure] = []
    rcpts = [m.group(1).lower() for m in _UNABLE.finditer(notice)]
    for m in _SENT.finditer(notice):
        reply = _RECEIVED.search(notice, m.end())
        if not reply:
            continue
        command = m.group(1).upper().split()[0]
        command = "HELO" if command == "EHLO" else command
        addr = m.group(2) if command == "RCPT" else (rcpts[0] if rcpts else "")
        if addr:
            out.append(failure(addr, reply.group(1), command=command))
    if not out:
        for addr in dict.fromkeys(rcpts):
            idx = notice.lower().find(addr)
            out.append(failure(addr, notice[idx + len(addr): idx + len(addr) + 600]))
    return out
