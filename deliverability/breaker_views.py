"""Admin page of every provider x pool breaker, with the operator's actions."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from deliverability.breaker.engine import MANUAL, Breaker
from deliverability.breaker.rules import load
from deliverability.models import BreakerTransition
from deliverability.page_sections import breaker_page_sections
from deliverability.providers import provider_name

ACTIONS = ("pause", "extend", "resume", "acknowledge")


def can_manage(user) -> bool:
    return user.is_active and (user.is_superuser or user.has_perm("deliverability.manage_breaker"))


def _when(timestamp: str) -> datetime | None:
    return datetime.fromtimestamp(float(timestamp), UTC) if timestamp else None


def breaker_rows(breaker: Breaker) -> list[dict]:
    providers = load().providers
    now = time.time()
    rows = []
    for provider, pool in breaker.keys():
        status = breaker.status(provider, pool)
        until = float(status["until"]) if status.get("until") else None
        info = providers.get(provider)
        rows.append({
            "provider": provider,
            "provider_name": provider_name(provider),
            "pool": pool,
            "state": status["state"],
            "level": status.get("level", "0"),
            "reason": status.get("reason", ""),
            "reply": status.get("reply", ""),
            "since": _when(status.get("since", "")),
            "until": _when(status.get("until", "")),
            "seconds_left": max(0, int(until - now)) if until else None,
            "postmaster_url": info.postmaster_url if info else "",
            "delisting_url": info.delisting_url if info else "",
            # A block that needs the operator first (deliverability.breaker.manual).
            "needs": status.get("needs", ""),
            "action": status.get("action", ""),
            "action_url": status.get("action_url", ""),
        })
    order = {"manual": 0, "paused": 1, "probing": 2, "throttled": 3, "ok": 4}
    rows.sort(key=lambda r: (order.get(r["state"], 5), r["provider"], r["pool"]))
    return rows


@permission_required("deliverability.view_breakertransition", raise_exception=True)
def breaker_list(request):
    context = {
        **admin.site.each_context(request),
        "title": "Provider breakers",
        "rows": breaker_rows(Breaker()),
        "transitions": BreakerTransition.objects.all()[:50],
        "can_manage": can_manage(request.user),
        "manual": MANUAL,
        "sections": breaker_page_sections(),  # e.g. sending's warm-up plans
        "known_providers": sorted(load().providers.values(), key=lambda p: p.name),
    }
    return render(request, "deliverability/breakers.html", context)


@require_POST
def breaker_action(request):
    if not can_manage(request.user):
        raise PermissionDenied("Only operators may change a breaker.")
    action = request.POST.get("action", "")
    provider = request.POST.get("provider", "").strip()
    pool = request.POST.get("pool", "").strip()
    if action not in ACTIONS or not provider or not pool:
        messages.error(request, "Unknown action, provider or pool.")
        return redirect("breaker-list")
    try:
        hours = float(request.POST.get("hours") or 4)
    except ValueError:
        hours = -1
    if action in ("pause", "extend") and not 0 < hours <= 24 * 30:
        messages.error(request, "Hours must be a number between 0 and 720.")
        return redirect("breaker-list")
    breaker, actor = Breaker(), request.user.get_username()
    if action == "pause":
        breaker.pause(provider, pool, seconds=hours * 3600, actor=actor,
                      note=request.POST.get("note", "")[:200])
    elif action == "extend":
        breaker.extend(provider, pool, seconds=hours * 3600, actor=actor)
    elif action == "resume":
        breaker.resume(provider, pool, actor=actor)
    else:
        breaker.acknowledge(provider, pool, actor=actor)
    from deliverability import gate

    gate.forget()
    messages.success(request, f"{action.capitalize()}: {provider} / {pool}.")
    return redirect("breaker-list")
