"""Blocks that no cool-down can lift: the operator must act first (a delisting form, a
reset request to the postmaster), so the breaker stops at ``manual`` instead of probing.

A rule says so with a tag listed under ``[manual_tags]`` in ``rules.toml``
(e.g. Swisscom's "You are not allowed to send us mail": ``needs_delisting_form``).
Probing such a provider only adds refused messages to the case against us;
the key waits for an operator, and the breaker page shows the form's link
(the rule's own ``action_url``, else the provider's ``delisting_url``) and what
to do. Acknowledging then starts the probes.
"""

from __future__ import annotations

from deliverability.breaker.rules import Provider, Rule


def needs_operator(raw: dict, rule: Rule | None) -> dict | None:
    """The ``[manual_tags]`` entry of the rule's tag (plus the rule's data), or None."""
    if rule is None or not rule.tag:
        return None
    spec = (raw.get("manual_tags") or {}).get(rule.tag)
    if spec is None:
        return None
    rule_data = next((r for r in raw.get("rules", ()) if r.get("id") == rule.id), {})
    return {"tag": rule.tag, "action": spec.get("action", ""),
            "url_from": spec.get("url_from", "delisting_url"),
            "action_url": rule_data.get("action_url", "")}


def fields(needs: dict, provider: Provider | None) -> dict:
    """What the breaker stores for the operator: the tag, the link, what to do."""
    url = needs["action_url"]
    if not url and provider is not None:
        url = getattr(provider, needs["url_from"], "") or provider.delisting_url
    action = needs["action"] or "act on the provider's block, then acknowledge"
    return {"needs": needs["tag"], "action_url": url, "action": action}
