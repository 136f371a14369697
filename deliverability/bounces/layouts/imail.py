"""Ipswitch IMail Server (its SMTP engine names itself ``X-Mailer: <SMTP32 vN>``).

IMail's notices put the reason first on the recipient's line, in IMail's own words
(IMail Server user guide, "SMTP delivery errors"):

    Unknown user: <address>
    User mailbox exceeds allowed size: <address>
    Delivery failed N attempts: <address>
    Unable to deliver to <address>

followed by "Body of message generated response:" and the remote's reply when one was
given, then "Original message follows.". The fixed prefixes map to reasons.
"""

from __future__ import annotations

import re

from ..model import Failure, Report
from ._common import failure

NAME = "imail"
SOURCE = "Ipswitch IMail Server user guide (delivery error notices); X-Mailer SMTP32"
_LINE = re.compile(r"^[ \t]*(?P<label>[A-Za-z][A-Za-z ,'\-]{2,60}?)(?: \d+ attempts)?:?[ \t]+"
                   r"<?(?P<a>[^\s<>@]+@[^\s<>]+?)>?[ \t.]*$", re.M)
_LABELS = (
    ("unknown user", "userunknown"), ("invalid final delivery userid", "userunknown"),
    ("unknown host", "hostunknown"), ("host unknown", "hostunknown"),
    ("mailbox exceeds allowed size", "mailboxfull"), ("mailbox full", "mailboxfull"),
    ("delivery failed", "expired"), ("virus detected", "virusdetected"),
)
_RESPONSE = re.compile(r"body of message generated response:\s*(.{0,600})", re.I | re.S)


# IMail's own prefixes, which also identify the layout when X-Mailer was stripped.
_OWN = re.compile(r"^[ \t]*(?:unknown user|user mailbox exceeds allowed size|"
                  r"delivery failed \d+ attempts):[ \t]*<?[^\s<>@]+@", re.I | re.M)


def detect(report: Report) -> bool:
    mailer = report.headers.get("x-mailer", "").lower()
    return "smtp32" in mailer or "imail" in mailer or bool(_OWN.search(report.notice[:3000]))


def parse(report: Report) -> list[Failure]:
    notice = report.notice
    response = _RESPONSE.search(notice)
    said = response.group(1).split("\n\n")[0] if response else ""
    out = []
    for m in _LINE.finditer(notice):
        label = m.group("label").strip().lower()
        reason = next((r for words, r in _LABELS if words in label), "")
        if not reason and not label.startswith(("unable to deliver", "undeliverable")):
            continue
        f = failure(m.group("a"), f"{said} {m.group(0)}".strip(), reason="" if said else reason)
        out.append(f)
    return out
