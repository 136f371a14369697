"""The optional webhook called on every breaker transition (BREAKER_WEBHOOK_URL)."""

from __future__ import annotations

import json
import urllib.request

from deliverability.models import BreakerTransition


def transition_payload(transition: BreakerTransition, provider_info=None) -> dict:
    return {
        "event": "breaker.transition",
        "provider": transition.provider,
        "provider_name": provider_info.name if provider_info else transition.provider,
        "pool": transition.pool,
        "from": transition.from_state,
        "to": transition.to_state,
        "level": transition.level,
        "class": transition.klass,
        "rule": transition.rule_id,
        "reason": transition.reason,
        "reply": transition.reply,
        "until": transition.until.isoformat() if transition.until else None,
        "actor": transition.actor,
        "at": transition.created_at.isoformat(),
        "postmaster_url": provider_info.postmaster_url if provider_info else "",
        "delisting_url": provider_info.delisting_url if provider_info else "",
    }


def post_json(url: str, payload: dict, timeout: float = 10.0) -> int:
    request = urllib.request.Request(  # noqa: S310 - the operator configures an http(s) URL
        url, data=json.dumps(payload).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "postwarden-breaker"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return response.status
