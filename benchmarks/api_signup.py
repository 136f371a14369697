"""API signup throughput against a bare DRF view: python -m benchmarks.api_signup

Starts gunicorn on loopback (the real WSGI stack, DEBUG off) and drives it from a
second process with the small asyncio load generator of ``benchmarks.signup``:
first ``GET /bench/bare-api/`` (a DRF view that answers ``{"ok": true}`` through
the same token authentication, scope check and per-token throttle as the API),
then ``POST /api/v1/subscriptions/`` with a new address per request (a signup to
a double opt-in list through the form's own service: checked and queued in the
request, answered 202 ``queued``), alternating so both see the same machine
load. Then a Celery worker on the transactional queue stores every queued signup
(pending subscription, consent record with source ``api``) and sends its
confirmation mail to an aiosmtpd sink; the benchmark waits for all of them and
reports that rate apart (``worker_stored_per_s``, start-up included).

Final line: one JSON object with ``bare_rps``, ``api_signup_rps`` and ``ratio``
(target: ratio >= 0.5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

from benchmarks import http_load
from benchmarks.harness import ROOT, Bench

LIST_SLUG = "bench"


# --- the WSGI application gunicorn serves: the project's URLs plus a bare DRF view -----

def _bare_view():
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from newsletter.models import MailingList

    class Bare(APIView):
        permission_model = MailingList  # read scope + view_mailinglist, like GET /lists/

        def get(self, request):
            return Response({"ok": True})

    return Bare.as_view()


def _urlpatterns():
    from django.urls import include, path

    return [path("bench/bare-api/", _bare_view()), path("", include("config.urls"))]


__getattr__ = http_load.urlconf(_urlpatterns)  # urlpatterns, when Django resolves us
application = http_load.wsgi_application("benchmarks.api_signup")


# --- the load generator (its own process) ------------------------------------------------

async def _load(port: int, kind: str, seconds: float, concurrency: int, offset: int,
                key: str) -> dict:
    host = "127.0.0.1"
    sequence = [offset]
    auth = f"Authorization: Bearer {key}\r\n"

    def build() -> bytes:
        if kind == "bare":
            return (f"GET /bench/bare-api/ HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
                    "Connection: close\r\n\r\n").encode()
        sequence[0] += 1
        body = json.dumps({"list": LIST_SLUG, "email": f"reader{sequence[0]}@example.org",
                           "name": "Reader", "user_agent": "bench-checkout/1"}).encode()
        return (f"POST /api/v1/subscriptions/ HTTP/1.1\r\nHost: {host}:{port}\r\n{auth}"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body

    def good(status: int, data: bytes) -> bool:
        return status == 200 if kind == "bare" else (status == 202 and b'"queued"' in data)

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
    result = asyncio.run(_load(args.port, args.kind, args.seconds, args.concurrency,
                               args.offset, os.environ["BENCH_API_KEY"]))
    print(json.dumps(result))


# --- the benchmark -----------------------------------------------------------------------

def _wait_ready(port: int, key: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"http://127.0.0.1:{port}/bench/bare-api/",
                                     headers={"Authorization": f"Bearer {key}"})
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(request, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not come up")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1,
                        help="gunicorn worker processes (the same for both views)")
    parser.add_argument("--rounds", type=int, default=3, help="alternations; medians count")
    args = parser.parse_args()

    with Bench("api_signup") as bench:
        from django.contrib.auth.models import User

        from api.tokens import token_create
        from config.redis_server import free_port
        from newsletter.models import ConsentRecord, MailingList, Subscription
        from sending.models import TransactionalEmail
        from sending.sink import start_sink

        MailingList.objects.create(name="Bench News", slug=LIST_SLUG)
        user = User.objects.create_superuser("bench", "bench@example.org", "x")
        _token, key = token_create(user=user, name="bench", scopes=["read", "subscribers"])
        port = free_port()
        sink_port = free_port()
        sink = start_sink(bench.tmp / "sink", port=sink_port)
        env = {**bench.env, "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "bench-only-key",
               "DJANGO_ALLOWED_HOSTS": "127.0.0.1", "LOG_LEVEL": "WARNING",
               "STATIC_ROOT": str(bench.tmp / "static"), "BENCH_API_KEY": key,
               "SITE_URL": f"http://127.0.0.1:{port}",
               "DEFAULT_RELAY_URL": f"smtp://127.0.0.1:{sink_port}",
               # one client sends everything: lift the per-list and per-token limits
               "SIGNUP_RATE_PER_LIST": "1000000000", "API_RATE_PER_TOKEN": "100000000/s"}
        (bench.tmp / "static").mkdir()
        worker = None

        def _stored() -> tuple[int, int, int]:
            return (Subscription.objects.filter(status="pending").count(),
                    ConsentRecord.objects.filter(event="signup", source="api").count(),
                    TransactionalEmail.objects.filter(purpose="confirmation").count())

        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "benchmarks.api_signup:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(args.workers),
             "--worker-class", "sync", "--backlog", "512", "--log-level", "warning"],
            cwd=ROOT, env=env)
        try:
            _wait_ready(port, key)
            results: dict[str, list[dict]] = {"bare": [], "signup": []}
            offset = 0
            for round_ in range(args.rounds):
                for kind in ("bare", "signup"):
                    out = subprocess.run(
                        [sys.executable, "-m", "benchmarks.api_signup", "--load", "--port",
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
            # Then the transactional worker stores the queued signups and sends their
            # confirmations (to the sink), as it does for the form: measured apart.
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q",
                 "transactional", "-c", str(os.cpu_count() or 1), "--without-gossip",
                 "--without-mingle", "--loglevel", "WARNING"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            drain_started = time.monotonic()
            while _stored() != (signups,) * 3 and time.monotonic() - drain_started < 600:
                time.sleep(0.5)
            drain_s = time.monotonic() - drain_started
            bench.log(f"worker stored all {signups:,} signups in {drain_s:.1f}s "
                      f"(start-up included)")
        finally:
            server.terminate()
            server.wait(20)
            if worker is not None:
                worker.terminate()
                worker.wait(30)
            sink.stop()

        bad = sum(r["bad"] for r in results["signup"] + results["bare"])
        stored = _stored()
        if bad or stored != (signups,) * 3:
            raise SystemExit(f"inconsistent: {signups} signups answered, {bad} bad answers, "
                             f"stored (subscriptions, records, mails) = {stored}")
        bare_rps = statistics.median(r["rps"] for r in results["bare"])
        signup_rps = statistics.median(r["rps"] for r in results["signup"])
        bench.report(
            bare_rps=round(bare_rps, 1), api_signup_rps=round(signup_rps, 1),
            ratio=round(signup_rps / bare_rps, 3), target_ratio=0.5, signups=signups,
            # Each round's own ratio: how much the shared machine moved between runs.
            round_ratios=[round(s["rps"] / b["rps"], 3) if b["rps"] else None
                          for b, s in zip(results["bare"], results["signup"], strict=True)],
            gunicorn_workers=args.workers, concurrency=args.concurrency,
            signup_p50_ms=round(statistics.median(r["p50_ms"] for r in results["signup"]), 2),
            bare_p50_ms=round(statistics.median(r["p50_ms"] for r in results["bare"]), 2),
            worker_stored_per_s=round(signups / drain_s, 1), cpus=os.cpu_count(),
        )


if __name__ == "__main__":
    if "--load" in sys.argv:
        sys.argv.remove("--load")
        load_main(sys.argv[1:])
    else:
        main()
