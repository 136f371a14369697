"""Verizon Wireless e-mail to text/picture message gateways (vtext.com, vzwpix.com).

The gateway is the recipient's final system: a refusal there is about the number
itself. Its notices say "Message could not be delivered to mobile" or "Error: No valid
recipients for this MM" (MM: a 3GPP TS 23.140 multimedia message; "no valid
recipients" is the gateway stating the number is not a subscriber); the number's
address is in the notice or the returned message's To.
"""

from __future__ import annotations

import re

from .. import mime, textscan
from ..model import Failure, Report
from ._common import failure

NAME = "verizon"
SOURCE = "Verizon Wireless vtext.com / vzwpix.com gateway notices; 3GPP TS 23.140"
_GATEWAY = re.compile(r"@(?:[\w\-]+\.)*(?:vtext\.com|vzwpix\.com|vzw\.com)\b", re.I)
_ERROR = re.compile(r"^[ \t]*error:[ \t]*(.+)$", re.I | re.M)
# The gateway's statements that the destination number or address is not one of its
# subscribers; said by the final system, so about the address (not a filter's verdict).
_NOT_SUBSCRIBER = re.compile(r"no valid recipients|invalid (?:user|recipient|number|mdn|address)|"
                             r"(?:user|recipient|number) (?:unknown|not found)|"
                             r"not a (?:valid )?(?:verizon|subscriber)", re.I)


def detect(report: Report) -> bool:
    frm = f"{report.headers.get('from', '')} {report.headers.get('return-path', '')}"
    return bool(_GATEWAY.search(frm))


def parse(report: Report) -> list[Failure]:
    notice = report.notice
    rcpts = [a for a in textscan.addresses(notice) if _GATEWAY.search("@" + a.split("@")[-1])]
    if not rcpts and report.original:
        head, _ = mime.split_head_body(report.original.lstrip("\n"))
        rcpts = textscan.addresses(mime.parse_headers(head).get("to", ""))
    rcpts = [a for a in rcpts if report.sender.lower() != a.lower()]
    if not rcpts:
        return []
    m = _ERROR.search(notice)
    diag = m.group(1) if m else textscan.squash(notice[:600])
    reason = "userunknown" if _NOT_SUBSCRIBER.search(diag) else ""
    return [failure(rcpts[0], diag, reason=reason)]
