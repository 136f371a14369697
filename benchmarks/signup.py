"""Signup throughput against a bare Django view: python -m benchmarks.signup

Starts gunicorn on loopback (the real WSGI stack and middleware, settings as
in production: DEBUG off), and drives it from a second process with a small
asyncio HTTP load generator: first ``GET /bench/bare/`` (a view that returns
"ok" through the same middleware), then the real signup ``POST /s/<list>/``
with a CSRF token and a new address per request, alternating twice so both
see the same machine load. Every signup must answer 302 to "check your inbox"
and leave a pending subscription, a consent record and a queued confirmation
mail behind; the benchmark checks the counts.

Signups are checked in the request and stored by a worker on the
transactional queue (SIGNUP_ASYNC, the default). After the load, a Celery
worker starts and the benchmark waits until it has stored every signup that
was answered and every confirmation mail has arrived at a counting aiosmtpd
sink (another process): ``confirmations_per_s`` is signups over the time from
the first signup taken off the queue to the last confirmation at the sink
(target >= 500); ``worker_stored_per_s`` includes the worker's start-up. The
baseline, in the same run (before the worker starts and after it is done):
plain smtplib sending a confirmation-sized message over one connection to
the same sink; ``confirmations_ratio`` is the first over it.

Final line: one JSON object with ``bare_rps``, ``signup_rps`` and ``ratio``
(target: ratio >= 0.5), and the confirmation figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request

from benchmarks import http_load, sink_counter
from benchmarks.harness import ROOT, Bench

LIST_SLUG = "bench"


# --- the WSGI application gunicorn serves: the project's URLs plus a bare view -----

def bare(request):
    from django.http import HttpResponse

    return HttpResponse(b"ok", content_type="text/plain")


def _urlpatterns():
    from django.urls import include, path

    return [path("bench/bare/", bare), path("", include("config.urls"))]


__getattr__ = http_load.urlconf(_urlpatterns)  # urlpatterns, when Django resolves us
application = http_load.wsgi_application("benchmarks.signup")


# --- the load generator (runs in its own process) -----------------------------------

async def _load(host: str, port: int, kind: str, seconds: float, concurrency: int,
                offset: int, csrf: str, cookie: str) -> dict:
    sequence = [offset]

    def build() -> bytes:
        if kind == "bare":
            return (f"GET /bench/bare/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    "Connection: close\r\n\r\n").encode()
        sequence[0] += 1
        body = (f"csrfmiddlewaretoken={csrf}&email=reader{sequence[0]}%40example.org"
                f"&name=Reader&consent=on&website=").encode()
        return (f"POST /s/{LIST_SLUG}/ HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Cookie: csrftoken={cookie}\r\nUser-Agent: bench\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body

    def good(status: int, data: bytes) -> bool:
        return status == 200 if kind == "bare" else (status == 302 and b"check-inbox" in data)

    result = await http_load.run(host, port, seconds, concurrency, build, good)
    return {**result, "sequence_end": sequence[0]}


def load_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["bare", "signup"], required=True)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args(argv)
    csrf = cookie = ""
    if args.kind == "signup":
        with urllib.request.urlopen(
                f"http://127.0.0.1:{args.port}/s/{LIST_SLUG}/", timeout=10) as page:
            html = page.read().decode()
            cookie = re.search(r"csrftoken=([^;]+)", page.headers["Set-Cookie"]).group(1)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    result = asyncio.run(_load("127.0.0.1", args.port, args.kind, args.seconds,
                               args.concurrency, args.offset, csrf, cookie))
    print(json.dumps(result))


# --- the benchmark -----------------------------------------------------------------------

def _wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/bare/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def _smtplib_baseline(port: int, count: int) -> float:
    """Messages a second from plain smtplib over one connection: confirmation-sized ones."""
    import smtplib

    body = (b"Somebody, probably you, asked to receive Bench News at this address.\r\n\r\n"
            b"http://127.0.0.1/confirm/0000000000:abcdefghijklmnopqrstuvwxyz012345678/\r\n")
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", port) as session:
        for i in range(count):
            session.sendmail("news@example.org", ["reader@example.org"], (
                b"From: news@example.org\r\nTo: reader@example.org\r\n"
                b"Subject: Please confirm\r\nMessage-ID: <baseline.%d.%d@bench>\r\n\r\n"
                % (started * 1000, i)) + body)
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1,
                        help="gunicorn worker processes (default: gunicorn's advice, "
                             "2 x CPUs + 1; the same for both views)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations; medians count")
    args = parser.parse_args()

    with Bench("signup") as bench:
        import redis

        from config.redis_server import free_port
        from newsletter.models import ConsentRecord, MailingList, Subscription
        from newsletter.services.signup import SIGNUP_QUEUE
        from sending.models import TransactionalEmail

        MailingList.objects.create(name="Bench News", slug=LIST_SLUG)
        port = free_port()
        sink_port = free_port()
        sink = sink_counter.start(sink_port, bench.redis.url)
        client = redis.Redis.from_url(bench.redis.url)
        env = {**bench.env, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "bench-only-key",
               "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
               "STATIC_ROOT": str(bench.tmp / "static"),
               "DEFAULT_RELAY_URL": f"smtp://127.0.0.1:{sink_port}",
               "SITE_URL": f"http://127.0.0.1:{port}",
               # one client address sends everything: lift the per-IP, network and list limits
               "SIGNUP_RATE_PER_IP": "1000000000", "SIGNUP_RATE_PER_LIST": "1000000000",
               "SIGNUP_RATE_PER_NETWORK": "1000000000"}
        (bench.tmp / "static").mkdir()
        worker = None
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "benchmarks.signup:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "sync", "--backlog", "512", "--log-level", "warning"],
            cwd=ROOT, env=env)
        try:
            _wait_ready(port)
            results: dict[str, list[dict]] = {"bare": [], "signup": []}
            offset = 0
            for round_ in range(args.rounds):
                for kind in ("bare", "signup"):
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.signup", "--load", "--port",
                         str(port), "--kind", kind, "--seconds", str(args.seconds),
                         "--concurrency", str(args.concurrency), "--offset", str(offset)],
                        cwd=ROOT, env=env, capture_output=True, text=True, check=True)
                    result = json.loads(out.stdout.strip().splitlines()[-1])
                    offset = max(offset, result["sequence_end"]) + 1_000_000
                    results[kind].append(result)
                    bench.log(f"round {round_ + 1} {kind}: {result['rps']:,.0f} req/s "
                              f"(p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms,"
                              f" {result['bad']} bad)")
            signups = sum(r["ok"] for r in results["signup"])
            baselines = [_smtplib_baseline(sink_port, min(signups, 5000))]
            bench.log(f"baseline (smtplib, one connection): {baselines[0]:,.0f} msgs/s")
            time.sleep(0.1)  # the sink counts in memory and flushes every 10 ms
            client.set("sink:count", 0)
            # Then the transactional worker stores the queued signups and queues (and
            # sends, to the sink) their confirmations: its own rate, measured apart.
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q",
                 "transactional", "-c", str(os.cpu_count() or 1), "--without-gossip",
                 "--without-mingle", "--loglevel", "WARNING"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            def stored() -> tuple[int, int, int]:
                return (Subscription.objects.filter(status="pending").count(),
                        ConsentRecord.objects.filter(event="signup").count(),
                        TransactionalEmail.objects.filter(purpose="confirmation").count())

            drain_started = time.monotonic()
            queued = client.llen(SIGNUP_QUEUE)
            first_taken = None
            while time.monotonic() - drain_started < 240:
                if first_taken is None and client.llen(SIGNUP_QUEUE) < queued:
                    first_taken = time.monotonic()
                if int(client.get("sink:count") or 0) >= signups:
                    break
                time.sleep(0.01)
            at_sink = time.monotonic()
            delivered = int(client.get("sink:count") or 0)
            drain_s = at_sink - drain_started
            confirm_s = at_sink - (first_taken or drain_started)
            bench.log(f"worker stored all {signups:,} signups and their confirmations reached "
                      f"the sink in {confirm_s:.1f}s ({drain_s:.1f}s with start-up)")
            worker.terminate()
            worker.wait(30)
            worker = None
            baselines.append(_smtplib_baseline(sink_port, min(signups, 5000)))
            bench.log(f"baseline again: {baselines[1]:,.0f} msgs/s")
            duplicates = sum(1 for v in client.hvals("sink:ids") if int(v) > 1)
        finally:
            server.terminate()
            server.wait(20)
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            sink.terminate()
            sink.wait(10)

        bad = sum(r["bad"] for r in results["signup"] + results["bare"])
        sent = TransactionalEmail.objects.filter(purpose="confirmation", state="sent").count()
        if bad or stored() != (signups,) * 3 or sent != signups or delivered != signups:
            raise SystemExit(f"inconsistent: {signups} signups answered, {bad} bad answers, "
                             f"stored (subscriptions, records, mails) = {stored()}, "
                             f"{sent} sent, {delivered} at the sink")
        from django.db.models import Max, Min

        span = TransactionalEmail.objects.filter(purpose="confirmation").aggregate(
            first=Min("created_at"), recorded=Max("created_at"), sent=Max("sent_at"))
        bare_rps = statistics.median(r["rps"] for r in results["bare"])
        signup_rps = statistics.median(r["rps"] for r in results["signup"])
        bench.report(
            bare_rps=round(bare_rps, 1), signup_rps=round(signup_rps, 1),
            ratio=round(signup_rps / bare_rps, 3), target_ratio=0.5,
            signups=signups, gunicorn_workers=args.workers, concurrency=args.concurrency,
            signup_p50_ms=round(statistics.median(r["p50_ms"] for r in results["signup"]), 2),
            bare_p50_ms=round(statistics.median(r["p50_ms"] for r in results["bare"]), 2),
            worker_stored_per_s=round(signups / drain_s, 1), cpus=os.cpu_count(),
            confirmations_per_s=round(signups / confirm_s, 1), target_confirmations_per_s=500,
            smtplib_baseline_msgs_per_s=round(statistics.mean(baselines), 1),
            confirmations_ratio=round(signups / confirm_s / statistics.mean(baselines), 3),
            duplicates=duplicates,
            # Where the time went: the drain recording mails, the last one sent after it.
            drain_recorded_s=round((span["recorded"] - span["first"]).total_seconds(), 2),
            last_sent_after_recorded_s=round((span["sent"] - span["recorded"]).total_seconds(),
                                             2),
        )


if __name__ == "__main__":
    if "--load" in sys.argv:
        sys.argv.remove("--load")
        load_main(sys.argv[1:])
    else:
        main()
