"""SurfControl E-mail Filter (later Websense): its own non-delivery notice.

Layout (SurfControl E-mail Filter administrator's guide, "Message non-deliverable"
notifications; the filter stamps ``X-SEF-Processed`` on mail it handled):

    Your message could not be sent.
    A transcript of the attempts to send the message follows.
    The number of attempts made: N
    Addressed To: <address>

    <date>
    Failed to send to identified host,
    <address>: [<ip>], 550 <reply>
    --- Message non-deliverable.
"""

from __future__ import annotations

import re

from ..model import Failure, Report
from ._common import failure

NAME = "surfcontrol"
SOURCE = "SurfControl E-mail Filter administrator's guide, non-delivery notice"
_TO = re.compile(r"^[ \t]*addressed to:[ \t]*<?([^\s<>]+@[^\s<>]+?)>?[ \t]*$", re.I | re.M)
_END = re.compile(r"^-+ ?message non-deliverable", re.I | re.M)


def detect(report: Report) -> bool:
    return "x-sef-processed" in report.headers or (
        "a transcript of the attempts to send the message follows" in report.notice.lower())


def parse(report: Report) -> list[Failure]:
    notice = report.notice
    out = []
    tos = list(_TO.finditer(notice))
    for i, m in enumerate(tos):
        stop = tos[i + 1].start() if i + 1 < len(tos) else len(notice)
        block = notice[m.end(): stop]
        end = _END.search(block)
        block = block[: end.start()] if end else block[:1500]
        # "<address>: [ip], 550 ..." is the remote's reply to RCPT for that address
        reply = re.search(re.escape(m.group(1)) + r":\s*\[[^\]]*\],?\s*(.*)", block, re.I)
        out.append(failure(m.group(1), reply.group(1) if reply else block,
                           command="RCPT" if reply else ""))
    return out
