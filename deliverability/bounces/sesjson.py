"""Amazon SES notifications delivered by e-mail (SNS): a JSON document in the body.

Format: docs.aws.amazon.com/ses/latest/dg/notification-contents.html
(notificationType Bounce / Complaint / Delivery).
"""

from __future__ import annotations

import json

from . import textscan
from .dsn import normal_status
from .model import Failure, Report


def _json_object(text: str) -> dict | None:
    start = text.find("{")
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(text[start:])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def read_ses(report: Report, text: str) -> bool:
    # SNS wraps long lines; JSON never contains a raw newline, so joining is safe.
    obj = _json_object(text.replace("\n", ""))
    if obj is None:
        return False
    if isinstance(obj.get("Message"), str):  # the SNS envelope carries the notification as text
        inner = _json_object(obj["Message"])
        if inner is not None:
            obj = inner
    kind = str(obj.get("notificationType") or obj.get("eventType") or "").lower()
    if kind == "bounce":
        b = obj.get("bounce") or {}
        for r in b.get("bouncedRecipients") or []:
            if not isinstance(r, dict):
                continue
            diag = textscan.squash(str(r.get("diagnosticCode") or ""))
            code, status = textscan.reply_code(diag)
            f = Failure(recipient=str(r.get("emailAddress") or ""),
                        action=str(r.get("action") or ""),
                        status=normal_status(str(r.get("status") or "")) or status,
                        smtp_code=code, diagnostic=diag, remote_mta=str(b.get("remoteMtaIp") or ""),
                        command=textscan.command(diag))
            if b.get("bounceType") == "Transient" and not f.status:
                f.action = "delayed"
            report.failures.append(f)
    elif kind == "complaint":
        c = obj.get("complaint") or {}
        ftype = str(c.get("complaintFeedbackType") or "abuse")
        for r in c.get("complainedRecipients") or []:
            if isinstance(r, dict):
                report.failures.append(Failure(recipient=str(r.get("emailAddress") or ""),
                                               reason="feedback", feedback_type=ftype))
    elif kind == "delivery":
        d = obj.get("delivery") or {}
        resp = textscan.squash(str(d.get("smtpResponse") or ""))
        code, status = textscan.reply_code(resp)
        for rcpt in d.get("recipients") or []:
            report.failures.append(Failure(recipient=str(rcpt), action="delivered",
                                           status=status or "2.0.0", smtp_code=code,
                                           diagnostic=resp,
                                           remote_mta=str(d.get("remoteMtaIp") or "")))
    else:
        return False
    report.form = "ses"
    return bool(report.failures)
