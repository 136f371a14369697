"""Synchronous SMTP answers handed over by sending: classify, act, announce.

Sending calls ``record_smtp_answers`` with every answer that was not a 2xx
acceptance, and ``record_smtp_accepted`` with counts of accepted ones. For each it
returns the classification (``deliverability.classify.classify_reply`` keys:
kind, reason, status, hard, ...). A hard bounce suppresses the address here,
because deliverability owns the suppression list; the provider breaker counts
each answer (blocks pause a provider); the signal ``smtp_answers_recorded``
announces them.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.dispatch import Signal

logger = logging.getLogger(__name__)

# sender=None, answers: list[SmtpAnswer], results: list[dict]
smtp_answers_recorded = Signal()

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BLOCK_WORDS = re.compile(
    r"block|blacklist|blocklist|spam|reputation|policy|denied|not allowed|rate|too many|"
    r"throttl|rbl|spamhaus", re.IGNORECASE)


@dataclass(frozen=True)
class SmtpAnswer:
    delivery_id: int | None
    address: str
    provider: str
    pool: str
    relay: str
    code: int
    text: str


def enhanced_status(text: str) -> str:
    match = _STATUS.search(text or "")
    return ".".join(match.groups()) if match else ""


def fallback_classify(code: int, text: str) -> dict:
    """Code-class rules used when the classifier answers unknown."""
    status = enhanced_status(text)
    if 200 <= code < 300:
        kind, reason = "delivered", "delivered"
    elif _BLOCK_WORDS.search(text or "") or status.startswith(("4.7.", "5.7.")):
        kind, reason = "block", "blocked"
    elif code >= 500 and status.startswith("5.1."):
        kind, reason = "hard", "userunknown"
    elif code >= 500 and not status and re.search(r"user|mailbox|recipient", text or "", re.I) \
            and re.search(r"unknown|not found|no such|does not exist", text or "", re.I):
        kind, reason = "hard", "userunknown"
    elif code >= 400:
        kind, reason = "soft", "undefined"
    else:
        kind, reason = "unknown", "undefined"
    return {"kind": kind, "reason": reason, "status": status, "smtp_code": str(code),
            "hard": kind == "hard", "diagnostic": text, "provider": ""}


def classify_answer(code: int, text: str, provider: str = "") -> dict:
    """The classifier's verdict; code-class rules fill in when it can only say unknown."""
    from deliverability.classify import classify_reply

    result = classify_reply(code, text, provider=provider or None)
    if result.get("kind") in (None, "", "unknown"):
        fallback = fallback_classify(code, text)
        result = {**result, "kind": fallback["kind"], "hard": fallback["hard"]}
    return result


def record_smtp_answers(answers: list[SmtpAnswer]) -> list[dict]:
    """Classify these answers, suppress hard-bounced addresses, announce; return results."""
    from deliverability.suppression import suppress

    results = []
    for answer in answers:
        result = classify_answer(answer.code, answer.text, answer.provider)
        results.append(result)
        if result.get("kind") == "hard":
            suppress(address=answer.address, reason="hard_bounce",
                     detail=f"{answer.code} {answer.text}"[:2000], source="smtp",
                     source_event_id=answer.delivery_id)
    breaker = _breaker()
    if breaker:
        for answer, result in zip(answers, results, strict=True):
            breaker.record(provider=answer.provider, pool=answer.pool, code=answer.code,
                           text=answer.text, reason=result.get("reason", ""))
    if answers:
        smtp_answers_recorded.send(sender=None, answers=answers, results=results)
    return results


def record_smtp_accepted(counts: dict[tuple[str, str], int]) -> None:
    """Accepted messages per (provider, pool): the breaker counts them for probes and
    for its failure rate (sending reports them at least every ``FLUSH_EVERY`` messages
    and before each refusal, so the window's share of refusals stays true)."""
    breaker = _breaker()
    if breaker:
        breaker.count_accepted(counts)  # the catch-all failure rate's window
        # One round trip finds the keys that are probing; only those count acceptances.
        probing = breaker.probing_among(list(counts))
        for (provider, pool), count in counts.items():
            if (provider, pool) in probing:
                breaker.record_accepted(provider=provider, pool=pool, count=count)


def _breaker():
    from deliverability.gate import _get_breaker

    return _get_breaker()
