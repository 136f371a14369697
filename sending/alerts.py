"""Operator alerts: every breaker transition is mailed through the transactional pool.

``deliverability`` announces transitions (``breaker_transitioned``); this
module, connected by ``config.apps``, turns them into mail for the operators
(``OPERATOR_EMAILS``, else every active superuser with an address).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import get_user_model

from config.env import env_list
from sending.transactional import transactional_email_send

logger = logging.getLogger(__name__)

STATE_WORDS = {
    "paused": "PAUSED: nothing is sent to it",
    "manual": "STOPPED until you acknowledge it",
    "throttled": "THROTTLED: sending slower",
    "probing": "probing with a few messages",
    "ok": "sending again",
}


def operator_addresses() -> list[str]:
    configured = env_list("OPERATOR_EMAILS", [])
    if configured:
        return configured
    users = get_user_model().objects.filter(is_superuser=True, is_active=True).exclude(email="")
    return sorted(set(users.values_list("email", flat=True)))


def breaker_alert_text(transition, provider_info) -> tuple[str, str]:
    from deliverability.providers import provider_name

    name = provider_info.name if provider_info else provider_name(transition.provider)
    state = STATE_WORDS.get(transition.to_state, transition.to_state)
    subject = f"[postwarden] {name} / {transition.pool}: {state}"
    lines = [
        f"Provider: {name} ({transition.provider})",
        f"Pool: {transition.pool}",
        f"Change: {transition.from_state} -> {transition.to_state} (level {transition.level})",
        f"Why: {transition.reason}",
    ]
    if transition.reply:
        lines.append(f"Their answer: {transition.reply}")
    if transition.until:
        lines.append(f"Next step at: {transition.until:%Y-%m-%d %H:%M} UTC")
    if transition.actor:
        lines.append(f"By: {transition.actor}")
    if provider_info and transition.to_state in ("paused", "manual"):
        if provider_info.postmaster_url:
            lines.append(f"Postmaster information: {provider_info.postmaster_url}")
        if provider_info.delisting_url:
            lines.append(f"Delisting / support request: {provider_info.delisting_url}")
    lines.append(f"Breakers: {settings.SITE_URL}/admin/breakers/")
    lines.append("")
    lines.append("Deliveries to a paused provider wait; they are not failed and no subscriber "
                 "is charged with a bounce.")
    return subject, "\n".join(lines) + "\n"


def breaker_alert(sender, transition, provider_info=None, **kwargs) -> None:
    recipients = operator_addresses()
    if not recipients:
        logger.warning("breaker transition %s: no operator address to alert", transition)
        return
    subject, body = breaker_alert_text(transition, provider_info)
    for address in recipients:
        transactional_email_send(to=address, subject=subject, body_text=body, purpose="alert")


def blocklist_alert(sender, pool: str, results: list, **kwargs) -> None:
    """The blocklist check run after a pool-wide block, mailed to the operators."""
    listed = [r for r in results if r.status == "fail"]
    subject = (f"[postwarden] pool {pool}: " + (f"LISTED on {len(listed)} blocklist(s)"
                                               if listed else "not on the checked blocklists"))
    lines = [f"Several providers blocked the pool {pool!r} within an hour, so it is paused for "
             "every provider. Blocklist check of its relay IPs and sending domains:", ""]
    lines += [f"{r.status.upper():7} {r.target}: {r.detail}" for r in results]
    if not results:
        lines.append("Nothing to check: no public relay IP or sending domain is configured.")
    lines += ["", f"Breakers: {settings.SITE_URL}/admin/breakers/"]
    for address in operator_addresses():
        transactional_email_send(to=address, subject=subject, body_text="\n".join(lines) + "\n",
                                 purpose="alert")


def raw_quota_alert(sender, total_bytes: int, quota_bytes: int, pruned: int, **kwargs) -> None:
    """Bounce raw storage reached its quota (deliverability.retention): tell the operators."""
    subject = "[postwarden] bounce storage reached its quota: oldest raw messages pruned"
    body = (f"Stored raw bounces took {total_bytes} bytes, over BOUNCE_RAW_QUOTA_BYTES "
            f"({quota_bytes}). The raw bytes of the {pruned} oldest messages were removed; "
            "their events and decisions stay. A flood of large bounces may be an attack: "
            f"see {settings.SITE_URL}/admin/deliverability/inboundmessage/\n")
    for address in operator_addresses():
        transactional_email_send(to=address, subject=subject, body_text=body, purpose="alert")
