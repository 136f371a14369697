"""A provider starts blocking mid-campaign: how much more does it get, and who else suffers?

    python -m benchmarks.block_storm [--per-provider 1500] [--block-after 50]
        [--block-seconds 20] [--time-scale 0.001] [--workers 2]

The real service pieces: the database (``DATABASE_URL`` or SQLite), a private
Redis, ``--workers`` Celery worker processes on the ``bulk`` queue, the sweeper
(the beat job, run here every second), and an aiosmtpd server posing as three
providers (Google, Microsoft, Swisscom, told apart by recipient domain). After
its ``--block-after``-th message Swisscom answers ``554 5.7.1 ... You are not
allowed to send us mail`` for ``--block-seconds``, then accepts again. The
breaker's clock is compressed by ``--time-scale`` (0.001: a 4 h cool-down lasts
14.4 s). The same campaign runs first without the block, as the baseline.

Final JSON line:
- ``sent_after_block``: messages that reached Swisscom after its first block,
  while it was blocking (goal: <= trigger count + probe budget = 6);
- ``pause_seconds``: from the first block to the last message of the normal
  flow reaching Swisscom, i.e. until every worker saw the pause (goal <= 1 s);
- ``others_ratio``: Google's and Microsoft's throughput with the block
  relative to the baseline (goal >= 0.9);
- ``suppressed``: subscribers suppressed because of the block (must be 0);
- ``held_unsent``: Swisscom deliveries neither sent after the recovery nor
  expired at the end (must be 0).

Swisscom's block needs its delisting form (rules tag ``needs_delisting_form``):
the breaker stops at ``manual``; here the operator acknowledges once the block
has ended (the form was filed and processed), and the probes follow.

    python -m benchmarks.block_storm --canary [--settle-seconds 2]

Canary sending (``sending.canary``): Swisscom blocks from its very first message
and for the whole run; both campaigns (baseline without the block, and the storm)
go out in canary slices. Final JSON line:
- ``sent_to_blocking``: messages Swisscom received (RCPTs, all refused);
- ``canary_allowed``: Swisscom's share of the first slice
  (goal: ``sent_to_blocking`` <= ``canary_allowed`` + 2);
- ``others_ratio``: Google's and Microsoft's throughput with the block relative to
  the baseline, both in canary slices (goal >= 0.9);
- ``held_providers``: what the canary held back; ``suppressed`` (must be 0).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from benchmarks import provider_sim
from benchmarks.harness import ROOT, Bench
from config.redis_server import free_port

DOMAINS = {"google": "gmail.com", "microsoft_consumer": "outlook.com", "swisscom": "bluewin.ch"}
TEXT = "Hello {{ subscriber.email }},\n\nThis week's news.\n\nUnsubscribe: {{ unsubscribe_url }}\n"


def _events(client, domain: str) -> list[tuple[float, str]]:
    return [(float(t), outcome) for t, _, outcome in
            (item.decode().partition(":") for item in client.lrange(f"sim:{domain}", 0, -1))]


def run_campaign(bench, client, *, label: str, per_provider: int, block_after: int,
                 block_seconds: float, workers: int, timeout: float,
                 canary: bool = False) -> dict:
    """One campaign over the three providers; returns what the provider saw."""
    from django.db.models import Count

    from sending.models import Delivery, Relay, RelayPool
    from sending.services import (
        deliveries_dispatch,
        deliveries_sweep,
        mailing_create,
        mailing_start,
    )

    client.flushdb()
    port = free_port()
    sim = provider_sim.start(port, bench.redis.url, block_after=block_after,
                             block_seconds=block_seconds)
    pool = RelayPool.objects.create(name=f"bulk-{label}", purpose=RelayPool.Purpose.BULK)
    Relay.objects.create(pool=pool, name="mx", host="127.0.0.1", port=port, tls_mode="none",
                         max_rate_per_s=0, max_connections=8)
    mailing = mailing_create(from_email="News <news@example.org>", subject="Weekly news",
                             text=TEXT, pool=pool, list_id="news.example.org")
    # Interleaved, as a real list would be: the block hits while the others are sending.
    recipients = [(None, f"reader{i}.{label}@{DOMAINS[p]}") for i in range(per_provider)
                  for p in DOMAINS]
    mailing_start(mailing=mailing, recipients=recipients, dispatch=False, canary=canary)
    # The blocking provider's share of the first slice (all of it, without a canary).
    first_slice = (Delivery.objects.filter(mailing=mailing, provider="swisscom")
                   .exclude(state="queued", next_attempt_at__isnull=True).count())
    procs = []
    try:
        for k in range(workers):
            log = open(bench.tmp / f"{label}-worker{k}.log", "wb")
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "bulk",
                 "-n", f"{label}{k}@%h", "-P", "threads", "-c", "4", "--without-gossip",
                 "--without-mingle", "--loglevel", "WARNING"],
                cwd=ROOT, env={**bench.env, "LOG_LEVEL": "WARNING"}, stdout=log,
                stderr=subprocess.STDOUT))
        time.sleep(4)  # workers connect before the clock starts
        started = time.monotonic()
        deliveries_dispatch(mailing_id=mailing.id)
        others = Delivery.objects.filter(mailing=mailing).exclude(provider="swisscom")
        others_done_at = None
        deadline = time.monotonic() + timeout
        swept = time.monotonic()
        while time.monotonic() < deadline:
            # Look often (a one-second look made the others' time a multiple of a
            # second: 2 s or 3 s for the same work); sweep once a second, as beat does.
            time.sleep(0.05)
            if time.monotonic() - swept >= 1.0:
                if not canary:
                    _operator_acknowledges(client)
                deliveries_sweep()
                swept = time.monotonic()
            if others_done_at is None and not others.exclude(state="sent").exists():
                others_done_at = time.monotonic()
                if canary:
                    break  # the blocking provider's share is held back: nothing to wait for
            if others_done_at and not Delivery.objects.filter(
                    mailing=mailing, state__in=Delivery.OPEN_STATES).exists():
                break
        others_seconds = (others_done_at or time.monotonic()) - started
        states = dict(Delivery.objects.filter(mailing=mailing, provider="swisscom")
                      .values_list("state").annotate(n=Count("id")))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        sim.terminate()
        sim.wait(10)
    events = _events(client, "bluewin.ch")
    block_started = float(client.get("sim:block_started") or 0) or None
    block_ends = float(client.get("sim:block_ends") or 0) or None
    return {
        "mailing": mailing, "events": events, "block_started": block_started,
        "block_ends": block_ends, "others_per_s": 2 * per_provider / others_seconds,
        "swisscom_states": states, "first_slice": first_slice,
    }


def _operator_acknowledges(client) -> None:
    """Swisscom stops at manual until its delisting form is filed: once the block has
    ended, the operator acknowledges on the breaker page (and the probes start)."""
    from deliverability.breaker.engine import MANUAL, Breaker

    ends = float(client.get("sim:block_ends") or 0)
    if not ends or time.time() < ends:
        return
    breaker = Breaker()
    for provider, pool in breaker.keys():
        if provider == "swisscom" and breaker.status(provider, pool)["state"] == MANUAL:
            breaker.acknowledge(provider, pool, actor="benchmark operator")


def canary_main(args) -> None:
    os.environ.update(CANARY_SETTLE_SECONDS=str(args.settle_seconds),
                      CANARY_MIN_RECIPIENTS="1000")
    with Bench("block_storm_canary") as bench:
        import redis

        from deliverability.models import Suppression
        from sending import conf
        from sending.models import CanaryRun

        conf.reload()
        client = redis.Redis.from_url(bench.redis.url)
        common = {"per_provider": args.per_provider, "workers": args.workers,
                  "timeout": args.timeout, "canary": True}
        baseline = run_campaign(bench, client, label="baseline", block_after=-1,
                                block_seconds=0, **common)
        bench.log(f"baseline: others {baseline['others_per_s']:.0f} msgs/s in canary slices")
        storm = run_campaign(bench, client, label="storm", block_after=0,
                             block_seconds=10 * args.timeout, **common)
        run = CanaryRun.objects.get(mailing=storm["mailing"])
        bench.log(f"storm: others {storm['others_per_s']:.0f} msgs/s; swisscom "
                  f"{storm['swisscom_states']}; canary {run.state}, held {run.held_providers}")
        sent_to_blocking = len(storm["events"])
        bench.report(
            per_provider=args.per_provider, settle_seconds=args.settle_seconds,
            time_scale=args.time_scale, workers=args.workers,
            sent_to_blocking=sent_to_blocking, canary_allowed=storm["first_slice"],
            goal_met=sent_to_blocking <= storm["first_slice"] + 2,
            others_msgs_per_s=round(storm["others_per_s"], 1),
            others_baseline_msgs_per_s=round(baseline["others_per_s"], 1),
            others_ratio=round(storm["others_per_s"] / baseline["others_per_s"], 3),
            held_providers=run.held_providers, canary_steps=run.step + 1,
            suppressed=Suppression.objects.filter(address__endswith="@bluewin.ch").count(),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-provider", type=int, default=1500)
    parser.add_argument("--block-after", type=int, default=50)
    parser.add_argument("--block-seconds", type=float, default=20.0)
    parser.add_argument("--time-scale", type=float, default=0.001)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--canary", action="store_true",
                        help="canary sending against a provider that blocks from the start")
    parser.add_argument("--settle-seconds", type=int, default=2,
                        help="the canary's settle time between slices (with --canary)")
    args = parser.parse_args()

    os.environ.update(BREAKER_TIME_SCALE=str(args.time_scale), PROVIDER_MX_LOOKUP="false",
                      SENDING_PROVIDER_RATE_PER_S="0", BOUNCE_DOMAIN="bounce.example.org")
    if args.canary:
        canary_main(args)
        return
    with Bench("block_storm") as bench:
        import redis

        from deliverability.models import BreakerTransition, Suppression
        from sending import conf

        conf.reload()
        client = redis.Redis.from_url(bench.redis.url)
        common = {"per_provider": args.per_provider, "workers": args.workers,
                  "timeout": args.timeout}
        baseline = run_campaign(bench, client, label="baseline", block_after=-1,
                                block_seconds=0, **common)
        bench.log(f"baseline: others {baseline['others_per_s']:.0f} msgs/s")
        storm = run_campaign(bench, client, label="storm", block_after=args.block_after,
                             block_seconds=args.block_seconds, **common)
        bench.log(f"storm: others {storm['others_per_s']:.0f} msgs/s; swisscom "
                  f"{storm['swisscom_states']}")
        start, end = storm["block_started"], storm["block_ends"]
        if start is None:
            raise RuntimeError("the provider never started blocking")
        during = [(t, o) for t, o in storm["events"] if start < t < end]
        first_probe = None
        transitions = list(BreakerTransition.objects.filter(provider="swisscom")
                           .order_by("id").values_list("to_state", "created_at"))
        probing_at = [c.timestamp() for s, c in transitions if s == "probing"]
        if probing_at:
            first_probe = probing_at[0]
        normal_flow = [t for t, _ in during if first_probe is None or t < first_probe]
        pause_seconds = (max(normal_flow) - start) if normal_flow else 0.0
        swisscom = storm["mailing"].deliveries.filter(provider="swisscom")
        held_unsent = swisscom.exclude(state__in=["sent", "expired"]).count()
        suppressed = Suppression.objects.filter(address__endswith="@bluewin.ch").count()
        bench.log("breaker: " + " -> ".join(s for s, _ in transitions))
        bench.report(
            per_provider=args.per_provider, block_after=args.block_after,
            block_seconds=args.block_seconds, time_scale=args.time_scale,
            sent_after_block=len(during),
            pause_seconds=round(pause_seconds, 3),
            others_msgs_per_s=round(storm["others_per_s"], 1),
            others_baseline_msgs_per_s=round(baseline["others_per_s"], 1),
            others_ratio=round(storm["others_per_s"] / baseline["others_per_s"], 3),
            suppressed=suppressed, held_unsent=held_unsent,
            breaker=[s for s, _ in transitions],
        )


if __name__ == "__main__":
    main()
