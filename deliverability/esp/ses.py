"""Amazon SES notifications through an SNS HTTPS subscription.

Verification (docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html):
the SigningCertURL must be https on ``sns.<region>.amazonaws.com``; the certificate
it names (fetched over verified TLS, cached) signs the canonical string of the
message's fields (``Name\\nvalue\\n`` in the documented order) with RSA, SHA1 for
SignatureVersion 1 and SHA256 for 2; the TopicArn must be one we configured.
SubscriptionConfirmation messages are verified the same way, then confirmed by
fetching their SubscribeURL.

Contents (docs.aws.amazon.com/ses/latest/dg/notification-contents.html, and the
event-publishing variant with ``eventType``): Bounce (bounceType Permanent /
Transient / Undetermined with bounceSubType, per recipient status and
diagnosticCode), Complaint, Delivery, DeliveryDelay.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from deliverability.esp import conf
from deliverability.esp.base import Malformed, Refused, record, result

SOURCE = "ses"
_HOST = re.compile(r"^sns\.[a-z0-9-]{1,40}\.amazonaws\.com(\.cn)?$")
_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                "TopicArn", "Type"),
}
# SignatureVersion 1 is SHA1 (SNS's default), 2 is SHA256.
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


class SnsClient:
    """The one place we reach AWS: signing certificates and subscription confirmation.

    This real one fetches over HTTPS with certificate checks (urllib's defaults) and
    keeps certificates in memory; tests pass their own with a local certificate.
    """

    timeout = 10.0

    def __init__(self):
        self._certs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def certificate(self, url: str) -> bytes:
        with self._lock:
            if url in self._certs:
                return self._certs[url]
        with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 - https, checked host
            pem = response.read(64 * 1024)
        with self._lock:
            self._certs[url] = pem
        return pem

    def confirm_subscription(self, url: str) -> None:
        with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310 - https, checked host
            response.read(64 * 1024)


_client: SnsClient | None = None


def sns_client() -> SnsClient:
    global _client
    if _client is None:
        _client = SnsClient()
    return _client


def set_sns_client(client: SnsClient | None) -> None:
    """Swap the AWS edge (tests); None restores the real one."""
    global _client
    _client = client


def _aws_url(url) -> str:
    parts = urlsplit(str(url or ""))
    if parts.scheme != "https" or not _HOST.match(parts.hostname or "") or parts.port not in (
            None, 443):
        raise Refused("URL is not https on an sns.<region>.amazonaws.com host")
    return parts.geturl()


def verify(envelope: dict) -> None:
    kind = envelope.get("Type")
    if kind not in _FIELDS:
        raise Malformed("not an SNS message type")
    if envelope.get("TopicArn") not in conf.SES_SNS_TOPIC_ARNS:
        raise Refused("topic not configured (SES_SNS_TOPIC_ARNS)")
    digest = _HASHES.get(str(envelope.get("SignatureVersion")))
    if digest is None:
        raise Refused("unknown SignatureVersion")
    try:
        signature = base64.b64decode(str(envelope.get("Signature") or ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Refused("signature is not base64") from exc
    try:
        pem = sns_client().certificate(_aws_url(envelope.get("SigningCertURL")))
    except urllib.error.HTTPError as exc:  # AWS answered: no such certificate
        raise Refused(f"signing certificate not served ({exc.code})") from exc
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise Refused("signing certificate unreadable") from exc
    now = datetime.now(UTC)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise Refused("signing certificate expired or not yet valid")
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused("signing certificate is not RSA")
    text = "".join(f"{name}\n{envelope[name]}\n" for name in _FIELDS[kind]
                   if name in envelope and not (name == "Subject" and envelope[name] is None))
    try:
        key.verify(signature, text.encode("utf-8"), padding.PKCS1v15(), digest())
    except InvalidSignature as exc:
        raise Refused("bad signature") from exc


def handle(body: bytes) -> dict:
    """Verify and take one SNS post; returns what was done (for the response)."""
    try:
        envelope = json.loads(body)
    except ValueError as exc:
        raise Malformed("body is not JSON") from exc
    if not isinstance(envelope, dict):
        raise Malformed("body is not a JSON object")
    verify(envelope)
    kind = envelope["Type"]
    if kind == "SubscriptionConfirmation":
        if conf.SES_SNS_AUTO_CONFIRM:
            sns_client().confirm_subscription(_aws_url(envelope.get("SubscribeURL")))
            return {"confirmed": envelope["TopicArn"]}
        return {"confirmed": None}
    if kind == "UnsubscribeConfirmation":
        return {"unsubscribed": envelope["TopicArn"]}
    try:
        notification = json.loads(envelope.get("Message") or "")
    except ValueError as exc:
        raise Malformed("Message is not JSON") from exc
    if not isinstance(notification, dict):
        raise Malformed("Message is not a JSON object")
    recorded = [message.pk for message in _events(envelope, notification)]
    return {"recorded": len(recorded)}


def _message_ids(mail: dict) -> list:
    common = mail.get("commonHeaders") if isinstance(mail.get("commonHeaders"), dict) else {}
    ids = [common.get("messageId")]
    for header in mail.get("headers") or []:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == "message-id":
            ids.append(header.get("value"))
    return ids


def _events(envelope: dict, notification: dict):
    kind = str(notification.get("notificationType") or notification.get("eventType") or "")
    mail = notification.get("mail") if isinstance(notification.get("mail"), dict) else {}
    ids = _message_ids(mail)
    base = {"sns_message_id": envelope.get("MessageId"), "type": kind}
    if kind == "Bounce":
        bounce = notification.get("bounce") if isinstance(notification.get("bounce"),
                                                          dict) else {}
        for recipient in _list(bounce.get("bouncedRecipients")):
            outcome = _bounce(bounce, recipient)
            yield record(SOURCE, {**base, "bounce": _without(bounce, "bouncedRecipients"),
                                  "recipient": recipient}, outcome, *ids)
    elif kind == "Complaint":
        complaint = notification.get("complaint") if isinstance(
            notification.get("complaint"), dict) else {}
        feedback = str(complaint.get("complaintFeedbackType") or "abuse")
        for recipient in _list(complaint.get("complainedRecipients")):
            outcome = result("complaint", feedback, recipient=str(recipient.get(
                "emailAddress") or ""))
            yield record(SOURCE, {**base, "complaint": _without(
                complaint, "complainedRecipients"), "recipient": recipient}, outcome, *ids)
    elif kind in ("Delivery", "DeliveryDelay"):
        detail = notification.get("delivery") or notification.get("deliveryDelay") or {}
        recipients = detail.get("recipients") or [r.get("emailAddress") for r in _list(
            detail.get("delayedRecipients"))]
        for address in recipients or []:
            if kind == "Delivery":
                outcome = result("delivered", "delivered", recipient=str(address))
            else:
                outcome = result("soft", "expired", recipient=str(address), delayed=True)
            yield record(SOURCE, {**base, "recipient": address}, outcome, *ids)


def _list(value) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _without(data: dict, key: str) -> dict:
    return {k: v for k, v in data.items() if k != key}


# bounceType/bounceSubType -> our kind and reason, when no SMTP answer is given.
_SUBTYPES = {
    ("Permanent", "General"): ("hard", "userunknown"),
    ("Permanent", "NoEmail"): ("hard", "userunknown"),
    ("Permanent", "Suppressed"): ("hard", "suppressed"),
    ("Permanent", "OnAccountSuppressionList"): ("hard", "suppressed"),
    ("Transient", "General"): ("soft", "undefined"),
    ("Transient", "MailboxFull"): ("soft", "mailboxfull"),
    ("Transient", "MessageTooLarge"): ("soft", "mesgtoobig"),
    ("Transient", "ContentRejected"): ("block", "contenterror"),
    ("Transient", "AttachmentRejected"): ("block", "contenterror"),
}


def _bounce(bounce: dict, recipient: dict) -> dict:
    kind, reason = _SUBTYPES.get((bounce.get("bounceType"), bounce.get("bounceSubType")),
                                 ("unknown", "undefined"))
    return result(kind, reason, recipient=str(recipient.get("emailAddress") or ""),
                  text=str(recipient.get("diagnosticCode") or ""),
                  status=str(recipient.get("status") or ""))
