"""Tracked-click redirects against a bare Django redirect view: python -m benchmarks.click_redirect

Starts gunicorn on loopback (the real WSGI stack and middleware, DEBUG off)
and drives it from a second process with an asyncio HTTP load generator
(the harness of ``benchmarks.signup``): first ``GET /bench/redirect/``, a
view that only returns ``HttpResponseRedirect`` through the same middleware,
then the real ``GET /c/<token>/`` with signed tokens for many subscribers
(signature check, the link's target, one Redis push), alternating rounds so
both see the same machine load. Every answer must be a 302 to the stored
target. Afterwards the drain (``tracking_drain``) counts the hits into the
database, and the benchmark checks that every answered click was counted
exactly once; its rate is ``drain_hits_per_s``.

Final line: one JSON object with ``bare_rps``, ``click_rps``, ``ratio``
(target: >= 0.7), the latency percentiles under load (``click_p99_ms``), and
the server's CPU time per request of each (``cpu_ratio`` = bare / click), which
the other load on a shared machine disturbs less than throughput.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.request

from benchmarks import http_load
from benchmarks.harness import ROOT, Bench

TARGET = "https://shop.example/spring?utm=bench"
SECRET = "bench-only-key-click-redirect"


# --- the WSGI application gunicorn serves: the project's URLs plus a bare redirect -----

def bare(request):
    from django.http import HttpResponseRedirect

    return HttpResponseRedirect(TARGET)


def _urlpatterns():
    from django.urls import include, path

    return [path("bench/redirect/", bare), path("", include("config.urls"))]


__getattr__ = http_load.urlconf(_urlpatterns)  # urlpatterns, when Django resolves us
application = http_load.wsgi_application("benchmarks.click_redirect")


# --- the load generator (runs in its own process) -----------------------------------

async def _load(host: str, port: int, kind: str, seconds: float, concurrency: int,
                tokens: list[str]) -> dict:
    expected = f"Location: {TARGET}\r\n".encode()
    rng = random.Random(concurrency)

    def build() -> bytes:
        target = "/bench/redirect/" if kind == "bare" else f"/c/{rng.choice(tokens)}/"
        return (f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                "User-Agent: Mozilla/5.0 (X11; Linux x86_64) bench\r\n"
                "Connection: close\r\n\r\n").encode()

    def good(status: int, data: bytes) -> bool:
        return status == 302 and expected in data

    return await http_load.run(host, port, seconds, concurrency, build, good)


def load_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["bare", "click"], required=True)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tokens", required=True)
    args = parser.parse_args(argv)
    with open(args.tokens) as handle:
        tokens = handle.read().split()
    print(json.dumps(asyncio.run(_load("127.0.0.1", args.port, args.kind, args.seconds,
                                       args.concurrency, tokens))))


# --- the benchmark -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _server_cpu_s(master: int) -> float:
    """CPU seconds (user + system) used so far by gunicorn's workers (Linux /proc).

    Throughput moves with whatever else the shared machine runs; the CPU the server
    spends per request does much less, so both are reported."""
    total = 0.0
    try:
        children = open(f"/proc/{master}/task/{master}/children").read().split()
    except OSError:
        return float("nan")
    for pid in children:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICK
    return total

def _wait_ready(port: int, timeout: float = 30) -> None:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            opener.open(f"http://127.0.0.1:{port}/bench/redirect/", timeout=2)
        except urllib.error.HTTPError as answer:
            if answer.code == 302:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1,
                        help="gunicorn worker processes (gunicorn's advice, 2 x CPUs + 1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations; medians count")
    parser.add_argument("--subscribers", type=int, default=5000,
                        help="distinct signed tokens the load picks from")
    args = parser.parse_args()

    # The parent signs the tokens with the key gunicorn will check them with.
    os.environ.update({"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": SECRET})
    with Bench("click_redirect") as bench:
        from config.redis_server import free_port
        from newsletter import tracking
        from newsletter.models import Campaign, TrackedLink, TrackingCount
        from newsletter.tracking_drain import tracking_drain

        campaign = Campaign.objects.create(name="Bench", subject="Bench", body="x",
                                           track_clicks=True)
        TrackedLink.objects.create(campaign=campaign, index=0, url=TARGET)
        token_file = bench.tmp / "tokens.txt"
        token_file.write_text("\n".join(tracking.click_token(campaign.id, 0, sid)
                                        for sid in range(1, args.subscribers + 1)))
        port = free_port()
        env = {**bench.env, "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
               "STATIC_ROOT": str(bench.tmp / "static"), "SITE_URL": f"http://127.0.0.1:{port}"}
        (bench.tmp / "static").mkdir()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "benchmarks.click_redirect:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "sync", "--backlog", "512", "--log-level", "warning"],
            cwd=ROOT, env=env)
        results: dict[str, list[dict]] = {"bare": [], "click": []}
        warm_clicks = 0
        try:
            _wait_ready(port)
            for kind in ("bare", "click"):  # warm every worker up (imports, caches), unmeasured
                warm = subprocess.run(
                    [sys.executable, "-m", "benchmarks.click_redirect", "--load", "--port",
                     str(port), "--kind", kind, "--seconds", "2", "--concurrency",
                     str(args.concurrency), "--tokens", str(token_file)],
                    cwd=ROOT, env=env, capture_output=True, text=True, check=True)
                if kind == "click":  # counted like any other click
                    warm_clicks = json.loads(warm.stdout.strip().splitlines()[-1])["ok"]
            for round_ in range(args.rounds):
                for kind in ("bare", "click"):
                    cpu_before = _server_cpu_s(server.pid)
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.click_redirect", "--load",
                         "--port", str(port), "--kind", kind, "--seconds", str(args.seconds),
                         "--concurrency", str(args.concurrency), "--tokens", str(token_file)],
                        cwd=ROOT, env=env, capture_output=True, text=True, check=True)
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    total = result["ok"] + result["bad"]
                    result["cpu_us"] = (1e6 * (_server_cpu_s(server.pid) - cpu_before) / total
                                        if total else float("nan"))
                    results[kind].append(result)
                    bench.log(f"round {round_ + 1} {kind}: {result['rps']:,.0f} req/s "
                              f"(p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms,"
                              f" server CPU {result['cpu_us']:.0f} us/request,"
                              f" {result['bad']} bad)")
        finally:
            server.terminate()
            server.wait(20)

        clicks = warm_clicks + sum(r["ok"] for r in results["click"])
        drain_started = time.monotonic()
        counted = 0
        while True:  # the periodic task, called back to back until Redis is empty
            done = tracking_drain(now=time.time() + 120)
            counted += done
            if not done:
                break
        drain_s = time.monotonic() - drain_started
        stored = sum(TrackingCount.objects.filter(campaign=campaign, kind="click")
                     .values_list("count", flat=True))
        bench.log(f"drained {counted:,} hits in {drain_s:.1f}s; stored {stored:,}")
        bad = sum(r["bad"] for r in results["click"] + results["bare"])
        if bad or stored != clicks:
            raise SystemExit(f"inconsistent: {clicks} clicks answered, {bad} bad answers, "
                             f"{stored} counted")
        bare_rps = statistics.median(r["rps"] for r in results["bare"])
        click_rps = statistics.median(r["rps"] for r in results["click"])
        # Each round's click run follows its bare run within seconds: their ratio sees the
        # most similar load from the other work on the machine.
        round_ratios = [c["rps"] / b["rps"] for b, c in zip(results["bare"], results["click"],
                                                            strict=True)]
        bare_cpu = statistics.median(r["cpu_us"] for r in results["bare"])
        click_cpu = statistics.median(r["cpu_us"] for r in results["click"])
        bench.report(
            bare_rps=round(bare_rps, 1), click_rps=round(click_rps, 1),
            ratio=round(click_rps / bare_rps, 3), target_ratio=0.7,
            round_ratios=[round(r, 3) for r in round_ratios],
            round_ratio_median=round(statistics.median(round_ratios), 3),
            bare_cpu_us_per_request=round(bare_cpu), click_cpu_us_per_request=round(click_cpu),
            cpu_ratio=round(bare_cpu / click_cpu, 3),
            click_p50_ms=round(statistics.median(r["p50_ms"] for r in results["click"]), 2),
            click_p99_ms=round(statistics.median(r["p99_ms"] for r in results["click"]), 2),
            bare_p50_ms=round(statistics.median(r["p50_ms"] for r in results["bare"]), 2),
            bare_p99_ms=round(statistics.median(r["p99_ms"] for r in results["bare"]), 2),
            clicks_counted=stored, drain_hits_per_s=round(counted / drain_s, 1) if drain_s
            else None, gunicorn_workers=args.workers, concurrency=args.concurrency,
            cpus=os.cpu_count(),
        )


if __name__ == "__main__":
    if "--load" in sys.argv:
        sys.argv.remove("--load")
        load_main(sys.argv[1:])
    else:
        main()
