"""Synchronous SMTP answers handed over by sending: classify, act, announce.

Sending calls ``record_smtp_answers`` with every answer that was not a 2xx
acceptance, and ``record_smtp_accepted`` with counts of accepted ones. For each it
returns the verdict (``deliverability.classify.classify_answer``: kind, reason,
status, hard, breaker_class, ...). A hard bounce suppresses the address here,
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



@dataclass(frozen=True)
class SmtpAnswer:
    delivery_id: int | None
    address: str
    provider: str
    pool: str
    relay: str
    code: int
    text: str


_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(text: str) -> str:
    """The first RFC 3463 enhanced status code in ``text`` ("5.1.1"), or ""."""
    match = _STATUS.search(text or "")
    return ".".join(match.groups()) if match else ""


def classify_answer(code: int, text: str, provider: str = "") -> dict:
    """The one verdict on an answer (``deliverability.classify.classify_answer``): kind,
    reason, hard and the breaker's class from one decision."""
    from deliverability.classify import classify_answer as verdict

    return verdict(code, text, provider)


def fallback_classify(code: int, text: str) -> dict:
    """Reply-code class rules (kept for callers of the old name)."""
    from deliverability.classify import code_fallback

    return code_fallback(code, text)


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
            # the breaker derives the same class from the verdict's reason (one decision)
            breaker.record(provider=answer.provider, pool=answer.pool, code=answer.code,
                           text=answer.text, reason=result.get("reason", ""),
                           delivery_id=answer.delivery_id)
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
