"""DragonFly Mail Agent (dma, also FreeBSD's and DragonFly BSD's base MTA).

Format from dma's ``mail.c`` ``bounce()`` (github.com/corecode/dma): the bounce's own
headers carry ``X-Original-To: <recipient>``, the body is

    This is the DragonFly Mail Agent <version> at <host>.

    There was an error delivering your mail to <recipient>.

    <reason>            (net.c: "<host> [<ip>] did not like our <CMD>:" + the reply)

    Message headers follow.   (or "Original message follows.")
"""

from __future__ import annotations

import re

from ..model import Failure, Report
from ._common import failure, first_address

NAME = "dma"
SOURCE = "github.com/corecode/dma mail.c bounce(), net.c"
_START = re.compile(r"there was an error delivering your mail to <([^>\s]+)>\.?", re.I)
_END = re.compile(r"^(?:message headers follow|original message follows)\.?\s*$", re.I | re.M)
_DID_NOT_LIKE = re.compile(r"did not like our ([A-Z]+(?: [A-Z]+)?)", re.I)


def detect(report: Report) -> bool:
    return "dragonfly mail agent" in report.notice[:500].lower() or bool(
        _START.search(report.notice[:2000]))


def parse(report: Report) -> list[Failure]:
    m = _START.search(report.notice)
    if not m:
        return []
    rcpt = m.group(1) or first_address(report.headers.get("x-original-to", ""))
    rest = report.notice[m.end():]
    end = _END.search(rest)
    reason = rest[: end.start()] if end else rest[:1500]
    cmd = _DID_NOT_LIKE.search(reason)
    command = ""
    if cmd:
        word = cmd.group(1).upper()
        command = "RCPT" if word.startswith("RCPT") else "MAIL" if word.startswith("MAIL") \
            else "DATA" if word.startswith("DATA") else "HELO" if word in ("EHLO", "HELO") \
            else ""
    return [failure(rcpt, reason, command=command)]
