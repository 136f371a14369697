"""Payloads shaped as each provider documents them, signed as each provider signs them.

The shapes follow the providers' documentation (SES notification contents and SNS
message format, SendGrid's event webhook reference, Mailgun's event structure,
Postmark's bounce / spam complaint webhooks); keys are made here for each test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from deliverability.esp.ses import SnsClient

BLOCK_TEXT = ("550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact "
              "your Internet service provider since part of their network is on our block "
              "list (S3150).")
TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-events"
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem"


def message_id(delivery) -> str:
    return f"<pw.{delivery.mailing_id}.{delivery.id}@news.example.com>"


def unknown_text(address: str) -> str:
    return f"smtp; 550 5.1.1 <{address}>... User unknown"


# --- Amazon SES through SNS -------------------------------------------------------

class LocalSns(SnsClient):
    """The AWS edge, answered here: a locally made certificate; confirmations recorded."""

    def __init__(self):
        super().__init__()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=30))
                .sign(self.key, hashes.SHA256()))
        self.pem = cert.public_bytes(serialization.Encoding.PEM)
        self.fetched: list[str] = []
        self.confirmed: list[str] = []

    def certificate(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pem

    def confirm_subscription(self, url: str) -> None:
        self.confirmed.append(url)

    def sign(self, envelope: dict, version: str = "1") -> dict:
        fields = {"Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn",
                                   "Type"),
                  "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL",
                                               "Timestamp", "Token", "TopicArn", "Type")}
        text = "".join(f"{k}\n{envelope[k]}\n" for k in fields[envelope["Type"]]
                       if envelope.get(k) is not None)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), digest)
        return {**envelope, "SignatureVersion": version,
                "Signature": base64.b64encode(signature).decode(), "SigningCertURL": CERT_URL}


def ses_notification(kind: str, delivery) -> dict:
    mail = {"timestamp": "2026-12-04T10:00:00.000Z", "source": "news@news.example.com",
            "messageId": "0102018c-ses-own-id-000000", "destination": [delivery.address],
            "headersTruncated": False,
            "headers": [{"name": "Message-ID", "value": message_id(delivery)}],
            "commonHeaders": {"from": ["News <news@news.example.com>"],
                              "to": [delivery.address], "messageId": message_id(delivery),
                              "subject": "June"}}
    if kind == "complaint":
        return {"notificationType": "Complaint", "mail": mail, "complaint": {
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": delivery.address}],
            "complaintFeedbackType": "abuse", "timestamp": "2026-12-04T10:05:00.000Z",
            "feedbackId": "0102018c-feedback"}}
    text = BLOCK_TEXT if kind == "block" else unknown_text(delivery.address)
    return {"notificationType": "Bounce", "mail": mail, "bounce": {
        "bounceType": "Permanent", "bounceSubType": "General",
        "bouncedRecipients": [{"emailAddress": delivery.address, "action": "failed",
                               "status": "5.7.1" if kind == "block" else "5.1.1",
                               "diagnosticCode": text}],
        "timestamp": "2026-12-04T10:05:00.000Z", "feedbackId": "0102018c-feedback",
        "reportingMTA": "dsn; a1-2.smtp-out.eu-west-1.amazonses.com"}}


def ses_envelope(sns: LocalSns, notification: dict, **override) -> dict:
    envelope = {"Type": "Notification", "MessageId": secrets.token_hex(8), "TopicArn": TOPIC,
                "Message": json.dumps(notification), "Timestamp": "2026-12-04T10:05:01.000Z",
                "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe"}
    return sns.sign({**envelope, **override})


# --- SendGrid ----------------------------------------------------------------------

class SendGridKeys:
    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public_b64 = base64.b64encode(self.private.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict:
        stamp = str(timestamp if timestamp is not None else int(time.time()))
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {"HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(
            signature).decode(), "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": stamp}


def sendgrid_events(kind: str, delivery) -> list[dict]:
    base = {"email": delivery.address, "timestamp": 1764842700, "smtp-id": message_id(delivery),
            "sg_event_id": secrets.token_urlsafe(16),
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"}
    if kind == "complaint":
        return [{**base, "event": "spamreport"}]
    if kind == "block":
        return [{**base, "event": "bounce", "type": "blocked", "status": "5.7.1",
                 "reason": BLOCK_TEXT, "bounce_classification": "Reputation"}]
    return [{**base, "event": "processed"},
            {**base, "event": "bounce", "type": "bounce", "status": "5.1.1",
             "reason": unknown_text(delivery.address),
             "bounce_classification": "Invalid Address"}]


# --- Mailgun -----------------------------------------------------------------------

MAILGUN_KEY = "key-" + "0123456789abcdef" * 2


def mailgun_signature(key: str = MAILGUN_KEY, timestamp: int | None = None,
                      token: str | None = None) -> dict:
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    token = token or secrets.token_hex(25)
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}


def mailgun_payload(kind: str, delivery, signature: dict | None = None) -> dict:
    event = {"id": secrets.token_urlsafe(12), "timestamp": 1764842700.1,
             "recipient": delivery.address, "recipient-domain": delivery.address.split("@")[1],
             "message": {"headers": {"message-id": message_id(delivery).strip("<>"),
                                     "from": "News <news@news.example.com>",
                                     "to": delivery.address, "subject": "June"}},
             "user-variables": {}, "tags": [], "log-level": "error"}
    if kind == "complaint":
        event.update({"event": "complained", "log-level": "warn"})
    else:
        text = BLOCK_TEXT if kind == "block" else unknown_text(delivery.address)
        event.update({"event": "failed", "severity": "permanent",
                      "reason": "generic" if kind == "block" else "bounce",
                      "delivery-status": {"code": 550, "message": text, "description": "",
                                          "attempt-no": 1, "mx-host": "mx.example.org"}})
    return {"signature": signature or mailgun_signature(), "event-data": event}


# --- Postmark ----------------------------------------------------------------------

POSTMARK_USER, POSTMARK_PASSWORD = "postmark-hook", "s3cret-" + "x" * 20


def postmark_auth(user: str = POSTMARK_USER, password: str = POSTMARK_PASSWORD) -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


def postmark_event(kind: str, delivery) -> dict:
    base = {"ID": secrets.randbelow(10**9), "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "ServerID": 23, "MessageStream": "broadcast", "Email": delivery.address,
            "From": "news@news.example.com", "BouncedAt": "2026-12-04T10:05:00Z",
            "Subject": "June", "Metadata": {"pw-message-id": message_id(delivery)},
            "Tag": "", "DumpAvailable": False, "Inactive": True, "CanActivate": True}
    if kind == "complaint":
        return {**base, "RecordType": "SpamComplaint", "Type": "SpamComplaint",
                "TypeCode": 100001, "Name": "Spam complaint",
                "Description": "The subscriber explicitly marked this message as spam.",
                "Details": "Test spam complaint details"}
    if kind == "block":
        return {**base, "RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1,
                "Name": "Hard bounce", "Description": "The server was unable to deliver "
                "your message (ex: unknown user, mailbox not found).", "Details": BLOCK_TEXT}
    return {**base, "RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1,
            "Name": "Hard bounce", "Description": "The server was unable to deliver your "
            "message (ex: unknown user, mailbox not found).",
            "Details": unknown_text(delivery.address)}
