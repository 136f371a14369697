"""Bounce, complaint and auto-reply classification (pure code, no database).

Public entry points (contract in DESIGN.md):

- ``classify_message(raw: bytes) -> list[dict]``: one result per recipient a report
  names; ``[]`` for a message that is not a bounce, complaint or auto-reply.
- ``classify_reply(code, text, ...) -> dict``: a synchronous SMTP answer.
- ``classify_answer(code, text, provider=...) -> dict``: the one verdict on an SMTP
  answer that sending, the breaker and the intake act on: ``classify_reply``'s keys
  plus ``breaker_class``/``breaker_rule``, the breaker's class derived from the same
  decision (never a class the kind contradicts).

A *block* is a fact about the sender (reputation, policy, blocklist, rate) and
never sets ``hard``; ``hard`` is only for an address that does not exist or moved.
Neither function raises: anything unexpected becomes a ``kind: unknown`` result.
"""

from __future__ import annotations

import logging
import re

from deliverability.bounces import extract, textscan
from deliverability.bounces.dsn import normal_status
from deliverability.bounces.model import Failure, Report
from deliverability.bounces.rules import RuleSet, ruleset

log = logging.getLogger(__name__)

KINDS = ("hard", "soft", "block", "complaint", "auto_reply", "delivered", "unknown")
MAX_DIAGNOSTIC = 1000
MAX_CONTEXT = 2000  # the notice beyond this is boilerplate or the returned message
SENDER_STAGE = frozenset({"CONN", "HELO", "EHLO", "MAIL"})
# Status-only reasons that a more specific text may refine (a 5.7.1 "security error"
# whose text says "network error", a 4.4.7 "expired" that says why).
VAGUE_STATUS_REASONS = frozenset({"securityerror", "systemerror", "expired", "networkerror",
                                  "onhold", "undefined", "hostunknown", "userunknown"})


def rules() -> RuleSet:
    """The loaded rule set (cached)."""
    return ruleset()


def classify_message(raw: bytes) -> list[dict]:
    """Classify a raw bounce / complaint / auto-reply message."""
    try:
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        report = extract.read(bytes(raw))
        rs = rules()
        return [_result(rs, f, report) for f in report.failures]
    except Exception:
        log.warning("bounce classification failed", exc_info=True)
        return [unknown_result()]


def classify_reply(code: int | str | None, text: str | None, *, status: str | None = None,
                   command: str | None = None, recipient: str | None = None,
                   remote_mta: str | None = None, provider: str | None = None) -> dict:
    """Classify one synchronous SMTP reply (``550``, ``"5.1.1 <a@b>: user unknown"``).

    ``status`` is the enhanced code when the caller parsed it; otherwise it is read
    from the text. ``provider`` (google, microsoft, ...) lets provider rules apply when
    the text alone does not name the provider.
    """
    try:
        text = textscan.squash(str(text or ""))
        code_s = str(code).strip() if code not in (None, "") else ""
        if not code_s:
            code_s, _ = textscan.reply_code(text)
        st = normal_status(status or "") or textscan.reply_code(text)[1] or \
            textscan.any_status(text)
        f = Failure(recipient=recipient or "", status=st, smtp_code=code_s[:3],
                    diagnostic=text, remote_mta=remote_mta or "",
                    command=(command or textscan.command(text)).upper(),
                    # RFC 5321 4.2.1: a 4yz reply is transient, the sender tries again
                    action="delivered" if code_s.startswith("2") else
                    "delayed" if code_s.startswith("4") else "failed")
        return _result(rules(), f, None, provider=provider)
    except Exception:
        log.warning("reply classification failed", exc_info=True)
        return unknown_result()


def classify_answer(code: int | str | None, text: str | None, provider: str = "", *,
                    status: str | None = None, command: str | None = None,
                    recipient: str | None = None) -> dict:
    """One verdict on an SMTP answer: kind, reason, hard and the breaker class.

    ``provider`` is the breaker's provider key (sending's MX rollup, e.g.
    ``microsoft_365``); the classifier's provider rules are chosen from it. When the
    rules can only say ``unknown``, the reply code class decides (``code_fallback``)."""
    try:
        code_i = int(str(code).strip()[:3])
    except (TypeError, ValueError):
        code_i = 0
    result = classify_reply(code, text, status=status, command=command, recipient=recipient,
                            provider=classifier_provider(provider) or None)
    if result.get("kind") in (None, "", "unknown") and code_i:
        fallback = code_fallback(code_i, str(text or ""))
        result = {**result, "kind": fallback["kind"], "reason": fallback["reason"],
                  "hard": fallback["hard"], "rule": "code-class"}
    return with_breaker_class(result, provider, code_i)


def with_breaker_class(result: dict, provider: str = "", code: int = 0) -> dict:
    """``result`` with the breaker's class for it (``breaker_class``, ``breaker_rule``),
    derived from its kind and reason: one decision for the classifier and the breaker."""
    from deliverability.breaker.rules import classify as breaker_classify

    if result.get("kind") in ("complaint", "auto_reply", "delivered", None, ""):
        return {**result, "breaker_class": "", "breaker_rule": ""}
    if not code:
        smtp = str(result.get("smtp_code") or "")
        status = str(result.get("status") or "")
        code = int(smtp) if smtp.isdigit() else 554 if status.startswith("5") else \
            451 if status else 554
    try:
        match = breaker_classify(provider or result.get("provider", ""), code,
                                 str(result.get("diagnostic") or ""),
                                 reason=result.get("reason", ""), kind=result.get("kind", ""))
    except Exception:  # the breaker's rules unreadable: the verdict itself still stands
        log.warning("breaker class failed", exc_info=True)
        return {**result, "breaker_class": "", "breaker_rule": ""}
    return {**result, "breaker_class": match.klass,
            "breaker_rule": match.rule.id if match.rule else ""}


# The breaker's provider keys (sending's MX rollup) that the classifier's rules name
# otherwise: both Microsoft keys are Microsoft's texts.
_PROVIDER_ALIASES = {"microsoft_consumer": "microsoft", "microsoft_365": "microsoft"}


def classifier_provider(key: str) -> str:
    """The classifier's provider name for a breaker provider key ("" if it has none)."""
    if not key:
        return ""
    key = _PROVIDER_ALIASES.get(key, key)
    return key if key in rules().provider_names else ""


_STATUS_IN_TEXT = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_BLOCK_WORDS = re.compile(
    r"block|blacklist|blocklist|spam|reputation|policy|denied|not allowed|rate|too many|"
    r"throttl|rbl|spamhaus", re.IGNORECASE)


def code_fallback(code: int, text: str) -> dict:
    """Reply-code class rules (RFC 5321 4.2.1, RFC 3463 classes) for an answer the rules
    leave unknown: 2xx delivered, x.7.x or sender-side words a block, 5.1.x a bad
    address, other 4xx/5xx soft."""
    m = _STATUS_IN_TEXT.search(text or "")
    status = ".".join(m.groups()) if m else ""
    if 200 <= code < 300:
        kind, reason = "delivered", "delivered"
    elif status.startswith(("4.7.", "5.7.")) or _BLOCK_WORDS.search(text or ""):
        kind, reason = "block", "blocked"
    elif code >= 500 and status.startswith("5.1."):
        kind, reason = "hard", "userunknown"
    elif code >= 400:
        kind, reason = "soft", "undefined"
    else:
        kind, reason = "unknown", "undefined"
    return {"kind": kind, "reason": reason, "status": status, "smtp_code": str(code),
            "hard": kind == "hard", "diagnostic": text, "provider": ""}


def unknown_result(recipient: str = "", diagnostic: str = "") -> dict:
    return {"recipient": recipient, "kind": "unknown", "reason": "undefined", "status": "",
            "smtp_code": "", "hard": False, "permanent": None, "diagnostic": diagnostic,
            "remote_mta": "", "provider": "", "rule": ""}


def _result(rs: RuleSet, f: Failure, report: Report | None, provider: str | None = None) -> dict:
    prov = provider or rs.provider_of(
        f.remote_mta, report.reporting_mta if report else "", f.diagnostic[:300],
        report.sender.rpartition("@")[2] if report else "", f.recipient.rpartition("@")[2])
    reason, rule_id = decide(rs, f, report, prov)
    if f.command in SENDER_STAGE and rs.kinds.get(reason) == "hard":
        # refused before any recipient was named: the words are about us, not the address
        reason, rule_id = ("rejected" if f.command == "MAIL" else "blocked"), rule_id + "/stage"
    permanent = _permanent(f, reason)
    kind = rs.kinds.get(reason, "unknown")
    hard = reason in rs.hard_reasons or (reason == "notaccept" and permanent is True)
    if reason == "notaccept" and not hard:
        kind = "soft"
    if kind == "block":
        hard = False  # a fact about the sender never condemns the address
    if f.action == "delayed" and kind == "hard":
        # RFC 3464 2.3.3: delayed means still being retried; nothing is final yet
        kind, hard = "soft", False
    out = {
        "recipient": f.recipient.lower(),
        "kind": kind,
        "reason": reason,
        "status": f.status,
        "smtp_code": f.smtp_code,
        "hard": hard,
        "permanent": permanent,
        "action": f.action,  # RFC 3464: failed, delayed, delivered, relayed, expanded
        "diagnostic": f.diagnostic[:MAX_DIAGNOSTIC],
        "remote_mta": f.remote_mta,
        "provider": prov,
        "rule": rule_id,
    }
    if f.alias:
        out["original_recipient"] = f.alias.lower()
    if f.feedback_type:
        out["feedback_type"] = f.feedback_type
    if f.reported_return_path:
        out["reported_return_path"] = f.reported_return_path  # our VERP, per report
    if f.reported_message_id:
        out["reported_message_id"] = f.reported_message_id
    return out


def decide(rs: RuleSet, f: Failure, report: Report | None, provider: str) -> tuple[str, str]:
    """(reason, id of the rule or step that decided it), structure first:

    1. what the format itself states (feedback report, auto-reply, a vendor layout's
       fixed vocabulary: ``f.reason``);
    2. the RFC 3464 action (delivered/relayed/expanded are no failure);
    3. a provider's own statement in its notice (``notice`` rules);
    4. text rules, bounded by the RFC 3463 class and subject of the status
       (``[status_kinds]``): a generic text refines what the status says and never
       contradicts it; only provider rules (a provider's documented text) and
       ``over_status`` rules (named DNSBLs, SPF/DKIM/DMARC) may;
    5. the status alone, then weak text rules, the reply code's command stage, the
       notice's wider text, and the code class.
    """
    if f.reason:
        return f.reason, "format"
    if f.action in ("delivered", "relayed", "expanded") or f.status.startswith("2."):
        return "delivered", "status"
    if report is not None and provider in rs.notice_rules:
        notice = textscan.squash(f.context or report.notice)[:MAX_CONTEXT].lower()
        rule = rs.match_notice(notice, provider)
        if rule is not None:
            return rule.reason, rule.id + "/notice"
    diag = f.diagnostic
    low = diag.lower()
    found = rs.gate.present(low)
    # RFC 3463: the status's class and subject bound what a generic text may say
    kinds = _status_bound(rs, f)
    rule = rs.match(diag, f.status, f.smtp_code, f.command, provider, found=found, lowered=low,
                    kinds=kinds)
    if rule is not None:
        return rule.reason, rule.id
    by_status = rs.status_reason(f.status)
    if by_status and by_status not in VAGUE_STATUS_REASONS:
        return by_status, "status"
    rule = rs.match(diag, f.status, f.smtp_code, f.command, provider, weak=True, found=found,
                    lowered=low, kinds=kinds)
    if rule is not None:
        return rule.reason, rule.id
    if by_status:
        return by_status, "status"
    if f.diag_type.startswith("x-unix"):
        # RFC 3464 diagnostic type X-Unix: the local delivery program's exit status
        return "mailererror", "diag-type"
    if report is not None:
        context = textscan.squash(f"{report.subject}\n{f.context or report.notice}"[:MAX_CONTEXT])
        low = context.lower()
        found = rs.gate.present(low)
        for weak in (False, True):
            rule = rs.match(context, f.status, f.smtp_code, f.command, provider,
                            context=True, weak=weak, found=found, lowered=low, kinds=kinds)
            if rule is not None:
                return rule.reason, rule.id + "/context"
    if f.command == "MAIL":
        return "rejected", "command"
    if f.command in ("HELO", "EHLO", "CONN"):
        return "blocked", "command"
    if f.action in ("delayed", "expired"):
        return "expired", "action"
    if f.status[:3] in ("5.6", "4.6"):
        return "contenterror", "status"
    if f.status[:3] in ("5.7", "4.7"):
        return "securityerror", "status"
    if f.diagnostic:
        return "onhold", "fallback"
    return "undefined", "fallback"


def _status_bound(rs: RuleSet, f: Failure) -> frozenset[str] | None:
    """The kinds the enhanced status leaves to generic text rules (RFC 3463 section 3).

    The remote's own code in its reply outranks the DSN Status field, which is the
    reporting MTA's reading of it (RFC 3464 2.3.4); when the remote gave only a bare
    reply code, that reading is too coarse to overrule the remote's words: no bound."""
    own = textscan.reply_code(f.diagnostic)[1] or textscan.any_status(f.diagnostic)
    if own:
        return rs.kinds_for_status(own)
    if f.smtp_code:
        return None
    return rs.kinds_for_status(f.status)


# A notice that says the failure is not final: Sendmail's and Gmail's delay warnings
# ("THIS IS A WARNING MESSAGE ONLY", "Technical details of temporary failure"), Exim's
# "has not yet been delivered ... still trying", OpenSMTPD's "temporary failure report",
# Postfix's "Delayed Mail (still being retried)".
_TEMPORARY_NOTICE = re.compile(
    r"warning message only|temporary failure|has been delayed|delivery (?:is )?delayed|"
    r"not yet been delivered|still (?:being )?(?:retried|trying|undelivered)|"
    r"will (?:be retried|keep trying|retry)|delayed mail|(?:is|are) still in the queue|"
    r"no need to resend|do not need to re-?send")


def _permanent(f: Failure, reason: str) -> bool | None:
    """Whether the failure is final: the status/reply class when there is one; else the
    DSN action and the notice's own words. A returned message with neither (an old
    Sendmail, qmail or Exim notice) is a final failure: the MTA gave up."""
    first = (f.status or f.smtp_code)[:1]
    if first == "5":
        return True
    if first == "4":
        return False
    if reason in ("feedback", "vacation", "delivered"):
        return None
    if f.action == "delayed":
        return False
    text = f"{f.diagnostic} {f.context[:MAX_CONTEXT]}".lower()
    if _TEMPORARY_NOTICE.search(text):
        return False
    return True
