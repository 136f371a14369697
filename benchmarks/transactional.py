"""Messages per second through the transactional queue, against plain smtplib.

    python -m benchmarks.transactional [--messages 1000]

The real path: a row per mail, a Celery task on the ``transactional`` queue, a
real worker process claiming the row and sending through the transactional
relay (a counting aiosmtpd sink in another process). The baseline, in the same
run: plain smtplib sending the same number of pre-built messages over one
connection to the same sink.
"""

from __future__ import annotations

import argparse
import smtplib
import subprocess
import sys
import time

from benchmarks import sink_counter
from benchmarks.harness import ROOT, Bench
from config.redis_server import free_port


def wait_for_count(client, key: str, expected: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if int(client.get(key) or 0) >= expected:
            return time.monotonic()
        time.sleep(0.01)
    raise TimeoutError(f"{key} below {expected} after {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    n = args.messages

    with Bench("transactional") as bench:
        import redis

        port = free_port()
        sink = sink_counter.start(port, bench.redis.url)
        client = redis.Redis.from_url(bench.redis.url)
        try:
            # Baseline: the same sink, plain smtplib, one connection, pre-built bytes.
            message = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: baseline\r\n"
                       b"Message-ID: <%d@bench>\r\n\r\nHello.\r\n")
            started = time.monotonic()
            with smtplib.SMTP("127.0.0.1", port) as session:
                for i in range(n):
                    session.sendmail("a@example.org", ["b@example.org"], message % i)
            baseline_s = time.monotonic() - started
            bench.log(f"baseline: {n / baseline_s:.0f} msgs/s")

            from django.conf import settings

            from sending.transactional import transactional_email_send

            settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{port}"
            env = {**bench.env, "DEFAULT_RELAY_URL": settings.DEFAULT_RELAY_URL,
                   "LOG_LEVEL": "WARNING"}
            worker = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "transactional",
                 "-n", "transactional@%h", "-c", "2", "--without-gossip", "--without-mingle",
                 "--loglevel", "WARNING"], cwd=ROOT, env=env,
            )
            try:
                time.sleep(3)  # let the worker connect before the clock starts
                client.set("sink:count", 0)
                started = time.monotonic()
                for i in range(n):
                    transactional_email_send(to=f"reader{i}@example.org",
                                             subject="Please confirm", body_text="Confirm.\n")
                enqueued = time.monotonic()
                finished = wait_for_count(client, "sink:count", n, timeout=600)
            finally:
                worker.terminate()
                worker.wait(30)
            real_s = finished - started
            bench.log(f"enqueue: {n / (enqueued - started):.0f}/s; end to end: {n / real_s:.0f}/s")
            duplicates = sum(1 for v in client.hvals("sink:ids") if int(v) > 1)
        finally:
            sink.terminate()
            sink.wait(10)
        bench.report(
            messages=n,
            msgs_per_s=round(n / real_s, 1),
            baseline_msgs_per_s=round(n / baseline_s, 1),
            ratio=round((n / real_s) / (n / baseline_s), 3),
            duplicates=duplicates,
        )


if __name__ == "__main__":
    main()
