"""Messages per second through the transactional queue, against plain smtplib.

    python -m benchmarks.transactional [--messages 2000] [--rounds 3]

The real path: a row per mail, recorded in batches of ``--batch`` as the signup
drain records confirmations (``transactional_emails_send``), Celery tasks on the
``transactional`` queue, real worker processes claiming the rows and sending
through the transactional relay (a counting aiosmtpd sink in another process).
The baseline, in the same run: plain smtplib sending the same number of
pre-built messages over one connection to the same sink. The two alternate
(after a warm-up while the worker processes connect), so both see the same
machine load; medians count.
"""

from __future__ import annotations

import argparse
import smtplib
import statistics
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
    parser.add_argument("--messages", type=int, default=2000, help="per measurement")
    parser.add_argument("--batch", type=int, default=100, help="mails recorded per call")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternations of baseline and real path; medians count")
    args = parser.parse_args()
    n = args.messages

    with Bench("transactional") as bench:
        import redis

        port = free_port()
        sink = sink_counter.start(port, bench.redis.url)
        client = redis.Redis.from_url(bench.redis.url)
        from django.conf import settings

        from sending.transactional import transactional_emails_send

        settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{port}"
        env = {**bench.env, "DEFAULT_RELAY_URL": settings.DEFAULT_RELAY_URL,
               "LOG_LEVEL": "WARNING"}
        sequence = iter(range(10**9))

        def baseline() -> float:
            """The same sink, plain smtplib, one connection, pre-built bytes."""
            started = time.monotonic()
            with smtplib.SMTP("127.0.0.1", port) as session:
                for _ in range(n):
                    session.sendmail("a@example.org", ["b@example.org"], (
                        b"From: a@example.org\r\nTo: b@example.org\r\nSubject: baseline\r\n"
                        b"Message-ID: <%d@bench>\r\n\r\nHello.\r\n" % next(sequence)))
            return n / (time.monotonic() - started)

        def real(count: int) -> float:
            client.set("sink:count", 0)
            started = time.monotonic()
            for first in range(0, count, args.batch):
                transactional_emails_send(
                    {"to": f"reader{i}@example.org", "subject": "Please confirm",
                     "body_text": "Confirm.\n"}
                    for i in range(first, min(count, first + args.batch)))
            return count / (wait_for_count(client, "sink:count", count, timeout=600) - started)

        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "transactional",
             "-n", "transactional@%h", "-c", "2", "--without-gossip", "--without-mingle",
             "--loglevel", "WARNING"], cwd=ROOT, env=env,
        )
        rates: dict[str, list[float]] = {"baseline": [], "real": []}
        try:
            time.sleep(3)  # let the worker connect before the clock starts
            bench.log(f"warm-up (worker processes connect): {real(400):.0f} msgs/s")
            for round_ in range(args.rounds):
                rates["baseline"].append(baseline())
                rates["real"].append(real(n))
                bench.log(f"round {round_ + 1}: baseline {rates['baseline'][-1]:.0f} msgs/s, "
                          f"transactional path {rates['real'][-1]:.0f} msgs/s")
        finally:
            worker.terminate()
            worker.wait(30)
            duplicates = sum(1 for v in client.hvals("sink:ids") if int(v) > 1)
            sink.terminate()
            sink.wait(10)
        real_rate = statistics.median(rates["real"])
        baseline_rate = statistics.median(rates["baseline"])
        bench.report(
            messages=n, rounds=args.rounds, recorded_per_call=args.batch,
            msgs_per_s=round(real_rate, 1),
            baseline_msgs_per_s=round(baseline_rate, 1),
            ratio=round(real_rate / baseline_rate, 3), target_ratio=0.5,
            duplicates=duplicates,
        )


if __name__ == "__main__":
    main()
