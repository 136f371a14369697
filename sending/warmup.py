"""Warm-up plans: a new relay IP or sending domain earns its volume day by day.

Providers judge a sender they have never seen by how it starts: a new IP that
sends its full volume on day one looks like a spammer's fresh machine (Gmail:
"Increase sending volume slowly"; SendGrid ramps new IPs about x1.4 a day). A
plan (``WarmupPlan``, per relay source address or per From domain) gives each
provider a daily cap from its schedule (``warmup.toml``, data with sources).

- **Caps are shared** by every worker: one Redis hash per plan and UTC day
  (``sending:warmup:<plan>:<day>``, a field per provider), checked and counted in
  one Lua call with every plan that applies to the message (its relay's IP and its
  From domain). A message not sent after all gives its unit back.
- **Mail over today's cap waits**: the delivery is deferred to the next UTC day with
  the reason (not failed, still bound by the mailing's max age).
- **A plan moves once a day** (``warmup_plans_evaluate``, from the sweeper): a day
  whose hard-bounce, complaint and block rates stayed under the hold thresholds
  takes one step up; above the step-back thresholds, or a day on which the breaker
  paused the IP for blocks, steps back; otherwise (or with no mail) it holds.

Time comes from ``clock`` (unix seconds), replaceable by tests; a deferral waits
the clock's time to its next midnight.
"""

from __future__ import annotations

import logging
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from django.db.models import Q

from sending.warmup_models import WarmupPlan

logger = logging.getLogger(__name__)

SCHEDULES_PATH = Path(__file__).with_name("warmup.toml")
USE_KEY = "sending:warmup:{plan}:{day}"
USE_TTL = 3 * 86400
PLANS_TTL_S = 30.0

clock = time.time

_TAKE = """
for i = 1, #KEYS do
  local used = tonumber(redis.call('HGET', KEYS[i], ARGV[1]) or '0')
  if used >= tonumber(ARGV[i + 1]) then return i end
end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], ARGV[1], 1)
  redis.call('EXPIRE', KEYS[i], USE_TTL)
end
return 0
""".replace("USE_TTL", str(USE_TTL))


# --------------------------------------------------------------------------- data
@lru_cache(maxsize=1)
def schedules_data(path: Path = SCHEDULES_PATH) -> dict:
    with open(path, "rb") as handle:
        return tomllib.load(handle)


def schedule_caps(schedule: str, provider: str) -> list[int]:
    spec = schedules_data()["schedules"].get(schedule)
    if spec is None:
        raise ValueError(f"unknown warm-up schedule {schedule!r} (see sending/warmup.toml)")
    override = (spec.get("providers") or {}).get(provider)
    return list((override or spec)["daily_cap"])


def cap_for(schedule: str, step: int, provider: str) -> int | None:
    """Today's cap for this provider at ``step``; None once past the schedule (warm)."""
    caps = schedule_caps(schedule, provider)
    return caps[step] if step < len(caps) else None


def thresholds() -> dict:
    return schedules_data()["evaluation"]


# --------------------------------------------------------------------------- days
def day_of(unix: float) -> date:
    return datetime.fromtimestamp(unix, UTC).date()


def next_midnight(unix: float) -> float:
    start = datetime.combine(day_of(unix) + timedelta(days=1), datetime.min.time(), UTC)
    return start.timestamp()


# --------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class Plan:
    id: int
    kind: str
    target: str
    schedule: str
    step: int

    @property
    def label(self) -> str:
        return f"{self.kind} {self.target}"

    def cap(self, provider: str) -> int | None:
        return cap_for(self.schedule, self.step, provider)


@dataclass(frozen=True)
class Hold:
    until: float  # unix time (real clock) when the caps start again
    reason: str


_plans: tuple[float, dict[tuple[str, str], Plan]] | None = None


def _active_plans() -> dict[tuple[str, str], Plan]:
    global _plans
    now = time.monotonic()
    if _plans is not None and _plans[0] > now:
        return _plans[1]
    plans = {(p.kind, p.target.lower()): Plan(p.id, p.kind, p.target.lower(), p.schedule, p.step)
             for p in WarmupPlan.objects.filter(active=True)}
    _plans = (now + PLANS_TTL_S, plans)
    return plans


def forget() -> None:
    """Drop the cached plans (tests; after an edit)."""
    global _plans
    _plans = None


def plans_for(source_address: str | None, from_domain: str) -> list[Plan]:
    """The active plans a message from this IP and From domain falls under."""
    plans = _active_plans()
    if not plans:
        return []
    found = []
    if source_address and (WarmupPlan.Kind.IP, source_address.lower()) in plans:
        found.append(plans[(WarmupPlan.Kind.IP, source_address.lower())])
    if from_domain and (WarmupPlan.Kind.DOMAIN, from_domain.lower()) in plans:
        found.append(plans[(WarmupPlan.Kind.DOMAIN, from_domain.lower())])
    return found


class Caps:
    """The shared daily caps in Redis."""

    def __init__(self, redis):
        self.redis = redis
        self._take = redis.register_script(_TAKE)

    def take(self, plans: list[Plan], provider: str) -> Hold | None:
        """Count one message against every plan's cap; a Hold when one is full."""
        now = clock()
        capped = [(plan, plan.cap(provider)) for plan in plans]
        capped = [(plan, cap) for plan, cap in capped if cap is not None]
        if not capped:
            return None
        day = day_of(now).isoformat()
        keys = [USE_KEY.format(plan=plan.id, day=day) for plan, _ in capped]
        full = int(self._take(keys=keys, args=[provider, *(cap for _, cap in capped)]))
        if not full:
            return None
        plan, cap = capped[full - 1]
        return Hold(until=time.time() + (next_midnight(now) - now),
                    reason=f"warm-up cap: {plan.label} may send {cap} messages to {provider} "
                           f"today (step {plan.step + 1} of its plan); waits for tomorrow")

    def give_back(self, plans: list[Plan], provider: str) -> None:
        """A message counted by ``take`` that did not go out after all."""
        day = day_of(clock()).isoformat()
        pipe = self.redis.pipeline(transaction=False)
        for plan in plans:
            if plan.cap(provider) is not None:
                pipe.hincrby(USE_KEY.format(plan=plan.id, day=day), provider, -1)
        pipe.execute()

    def used(self, plan_id: int, day: date) -> dict[str, int]:
        raw = self.redis.hgetall(USE_KEY.format(plan=plan_id, day=day.isoformat()))
        return {k.decode(): int(v) for k, v in raw.items()}


_caps: Caps | None = None


def caps() -> Caps:
    from config.redis import get_redis

    global _caps
    redis = get_redis()
    if _caps is None or _caps.redis is not redis:
        _caps = Caps(redis)
    return _caps


# --------------------------------------------------------------------------- evaluation
def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, datetime.min.time(), UTC)
    return start, start + timedelta(days=1)


def _relay_labels(address: str) -> list[str]:
    from sending.models import Relay
    from sending.relays import relay_config

    return [relay_config(r).label for r in Relay.objects.filter(source_address=address)]


def _deliveries_of(plan: WarmupPlan):
    from sending.models import Delivery

    if plan.kind == WarmupPlan.Kind.IP:
        return Delivery.objects.filter(relay__in=_relay_labels(plan.target))
    domain = plan.target.lower()
    return Delivery.objects.filter(Q(mailing__from_email__iendswith=f"@{domain}")
                                   | Q(mailing__from_email__iendswith=f"@{domain}>"))


def day_figures(plan: WarmupPlan, day: date) -> dict:
    """What the plan's traffic did on ``day``: attempts, sent, hard, blocks, complaints,
    and block pauses of the IP by the breaker."""
    from deliverability.models import BounceEvent, BreakerTransition
    from sending.models import DeliveryAttempt

    start, end = _day_bounds(day)
    deliveries = _deliveries_of(plan).values("id")
    attempts = DeliveryAttempt.objects.filter(at__gte=start, at__lt=end,
                                              delivery_id__in=deliveries)
    smtp = attempts.exclude(relay="bounce report")
    figures = {
        "attempts": smtp.count(),
        "sent": smtp.filter(outcome="sent").count(),
        "hard": attempts.filter(kind="hard").values("delivery_id").distinct().count(),
        "blocks": attempts.filter(kind="block").values("delivery_id").distinct().count(),
        "complaints": BounceEvent.objects.filter(created_at__gte=start, created_at__lt=end,
                                                 kind="complaint",
                                                 delivery_id__in=deliveries).count(),
        "block_pauses": 0,
        "slowdowns": 0,
    }
    if plan.kind == WarmupPlan.Kind.IP:
        trips = BreakerTransition.objects.filter(
            created_at__gte=start, created_at__lt=end, pool__endswith=f"@{plan.target}",
            to_state__in=("paused", "manual", "throttled"))
        figures["block_pauses"] = trips.filter(klass__in=("block", "failure_rate")).count()
        figures["slowdowns"] = trips.filter(klass__in=("throttle", "reputation")).count()
    return figures


def decide(figures: dict) -> tuple[str, str]:
    """``advance``, ``hold`` or ``step_back``, and why."""
    limits = thresholds()
    attempts = figures["attempts"]
    if not attempts:
        return "hold", "no mail that day"
    rates = {"hard_bounce_rate": figures["hard"] / attempts,
             "block_rate": figures["blocks"] / attempts,
             "complaint_rate": figures["complaints"] / max(1, figures["sent"])}
    names = {"hard_bounce_rate": "hard bounces", "block_rate": "blocks",
             "complaint_rate": "complaints"}
    over = [f"{names[k]} {v:.2%} >= {limits['step_back'][k]:.2%}" for k, v in rates.items()
            if v >= limits["step_back"][k]]
    if figures.get("block_pauses"):
        over.append(f"{figures['block_pauses']} block pause(s) of the IP by the breaker")
    if over:
        return "step_back", "; ".join(over)
    high = [f"{names[k]} {v:.2%} >= {limits['hold'][k]:.2%}" for k, v in rates.items()
            if v >= limits["hold"][k]]
    if figures.get("slowdowns"):
        high.append(f"{figures['slowdowns']} rate-limit or reputation trip(s) of the IP")
    if high:
        return "hold", "; ".join(high)
    return "advance", (f"clean: {figures['hard']} hard, {figures['blocks']} blocks, "
                       f"{figures['complaints']} complaints in {attempts} attempts")


def plan_evaluate(plan: WarmupPlan, *, today: date) -> WarmupPlan:
    """Apply every finished day not evaluated yet (idempotent: a day counts once)."""
    day = (plan.evaluated_through + timedelta(days=1) if plan.evaluated_through
           else plan.started_on)
    limits = thresholds()
    while day < today:
        figures = day_figures(plan, day)
        decision, why = decide(figures)
        before = plan.step
        if decision == "advance":
            plan.step += 1
        elif decision == "step_back":
            plan.step = max(0, plan.step - int(limits["step_back"]["steps"]))
        plan.history = [*plan.history, {"day": day.isoformat(), "decision": decision,
                                        "why": why, "from": before + 1, "to": plan.step + 1,
                                        **figures}][-60:]
        plan.evaluated_through = day
        logger.info("warmup.%s", decision, extra={"plan": plan.id, "day": str(day), "why": why})
        day += timedelta(days=1)
    plan.save(update_fields=["step", "history", "evaluated_through"])
    return plan


def warmup_plans_evaluate() -> int:
    """Beat job (from the sweeper): move every active plan by its finished days."""
    today = day_of(clock())
    moved = 0
    for plan in WarmupPlan.objects.filter(active=True):
        if plan.evaluated_through is None or plan.evaluated_through < today - timedelta(days=1):
            if plan.started_on < today:
                plan_evaluate(plan, today=today)
                moved += 1
    if moved:
        forget()
    return moved


# --------------------------------------------------------------------------- reports
def plan_rows(providers: list[str] | None = None) -> list[dict]:
    """Each active plan's day, caps, use today and next step (breaker page, reports)."""
    today = day_of(clock())
    try:
        counter = caps()
    except Exception:  # no Redis: the rows without today's use
        counter = None
    rows = []
    for plan in WarmupPlan.objects.filter(active=True):
        try:
            used = counter.used(plan.id, today) if counter else {}
        except Exception:
            used = {}
        spec = schedules_data()["schedules"].get(plan.schedule, {})
        names = sorted(set(used) | set(providers or ()) | set(spec.get("providers") or {}))
        default_caps = spec.get("daily_cap", [])
        default = default_caps[plan.step] if plan.step < len(default_caps) else None
        per_provider = [{"provider": p, "cap": cap_for(plan.schedule, plan.step, p)
                         if spec else None, "used": used.get(p, 0)} for p in names]
        last = plan.history[-1] if plan.history else None
        following = default_caps[plan.step + 1] if plan.step + 1 < len(default_caps) else None
        if default is None:
            next_step = "warm: no cap any more"
        elif following is None:
            next_step = "after one more clean day: warm (no cap)"
        else:
            next_step = (f"after a clean day: {following} per provider a day "
                         f"(step {plan.step + 2} of {len(default_caps)})")
        rows.append({
            "id": plan.id, "kind": plan.kind, "target": plan.target, "schedule": plan.schedule,
            "day": (today - plan.started_on).days + 1, "step": plan.step + 1,
            "steps": len(default_caps), "cap": default, "providers": per_provider,
            "used_total": sum(used.values()), "next_step": next_step,
            "last_decision": last,
        })
    return rows


def breaker_page_section() -> dict:
    return {"title": "Warm-up plans", "template": "sending/warmup_section.html",
            "rows": plan_rows()}


def plan_rows_for_mailing(mailing) -> list[dict]:
    """The plans a mailing's mail falls under (its pool's relay IPs, its From domain)."""
    from email.utils import parseaddr

    from sending.relays import relays_for_pool

    addresses = {r.source_address.lower() for r in relays_for_pool(mailing.pool)
                 if r.source_address}
    domain = parseaddr(mailing.from_email)[1].rpartition("@")[2].lower()
    providers = sorted(set(mailing.deliveries.values_list("provider", flat=True).distinct()))
    return [row for row in plan_rows(providers)
            if (row["kind"] == "ip" and row["target"] in addresses)
            or (row["kind"] == "domain" and row["target"] == domain)]
