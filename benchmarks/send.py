"""End-to-end bulk sending rate, against plain smtplib to the same sink.

    python -m benchmarks.send [--recipients 20000] [--workers 2] [--sink python|c]
                              [--no-dkim] [--profile N]

The real thing: PostgreSQL (``DATABASE_URL``; else SQLite), a private Redis,
real subscribers in the newsletter tables, a mailing started through
``sending.services``, ``--workers`` Celery worker processes on the ``bulk``
queue, RSA-2048 DKIM, and an aiosmtpd sink in another process counting what it
receives (by Message-ID, so duplicates and missing messages show). The ceiling,
measured first in the same run: plain smtplib sending pre-built signed
messages over 4 connections (4 processes) to the same sink.

``--sink c`` puts Postfix's ``smtp-sink`` (C, Debian's postfix package, the
binary alone) in place of the aiosmtpd sink, writing each message to a tmpfs
folder, so that the engine rather than a Python sink on the same two cores is
what is measured; Postfix's ``smtp-source`` then also gives the sink's own
limit. ``--no-dkim`` sends unsigned, for comparison with peers that do not sign.

``--profile N`` instead sends N deliveries in this process under cProfile and
prints the top functions (what to optimise), then exits.
"""

from __future__ import annotations

import argparse
import cProfile
import multiprocessing
import os
import pstats
import secrets
import smtplib
import subprocess
import sys
import time

from benchmarks import c_sink, sink_counter
from benchmarks.harness import ROOT, Bench
from config.redis_server import free_port

HTML = ("<html><body><h1>News for {{ subscriber.name|default:\"you\" }}</h1>"
        + "<p>Paragraph of newsletter text with a <a href=\"https://example.org/a\">link</a>."
          " Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>\n" * 18
        + "<p><a href=\"{{ unsubscribe_url }}\">Unsubscribe</a> · "
          "<a href=\"{{ preferences_url }}\">Preferences</a></p></body></html>")
TEXT = ("Hello {{ subscriber.name }},\n\n"
        + "Paragraph of newsletter text. Lorem ipsum dolor sit amet, consectetur elit.\n" * 18
        + "\nUnsubscribe: {{ unsubscribe_url }}\n")


def cpu_seconds(pid: int, system: bool = True) -> float:
    """User (+ system) CPU of a process so far (Linux /proc)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:13 if system else 12]) / os.sysconf("SC_CLK_TCK")


def _ceiling_worker(args) -> None:
    port, messages = args
    with smtplib.SMTP("127.0.0.1", port) as session:
        for rcpt, data in messages:
            session.sendmail("bounces@example.org", [rcpt], data)


def setup_data(n: int):
    """n confirmed subscriptions in the real newsletter tables; returns the pool and mailing."""
    from django.db import connection

    from newsletter.models import MailingList, Subscriber, Subscription
    from sending.models import RelayPool
    from sending.services import mailing_create

    news = MailingList.objects.create(name="Bench news", slug="bench-news",
                                      from_email="news@example.org")
    Subscriber.objects.bulk_create(
        [Subscriber(email=f"reader{i}@example{i % 40}.net", name=f"Reader {i}",
                    attributes={"city": "Bern"}) for i in range(n)], batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Subscription._meta.db_table} (subscriber_id, mailing_list_id, status, "
            "created_at, confirmed_at) SELECT id, %s, 'confirmed', %s, %s FROM "
            f"{Subscriber._meta.db_table}", [news.id, time_now(), time_now()])
    pool = RelayPool.objects.create(name="bulk-bench", purpose=RelayPool.Purpose.BULK)
    mailing = mailing_create(from_email="News <news@example.org>",
                             subject="News for {{ subscriber.name }}", text=TEXT, html=HTML,
                             list_id="bench-news.example.org", pool=pool)
    return news, pool, mailing


def time_now():
    from django.utils import timezone

    return timezone.now()


def recipients_sql(news_id: int):
    from newsletter.models import Subscriber, Subscription

    return (f"SELECT s.id, r.email FROM {Subscription._meta.db_table} s "
            f"JOIN {Subscriber._meta.db_table} r ON r.id = s.subscriber_id "
            "WHERE s.mailing_list_id = %s AND s.status = 'confirmed' ORDER BY s.id", [news_id])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4,
                        help="sending threads (SMTP connections) per worker process")
    parser.add_argument("--profile", type=int, default=0)
    parser.add_argument("--sink", choices=("python", "c"), default="python",
                        help="python: the aiosmtpd counting sink; c: Postfix smtp-sink")
    parser.add_argument("--no-dkim", action="store_true", help="send unsigned")
    parser.add_argument("--peers", action="store_true",
                        help="also measure django-post_office and a plain Django loop "
                             "(installed into a throwaway venv) against the same sink")
    parser.add_argument("--keep-logs", action="store_true", help="print the workers' logs")
    args = parser.parse_args()
    n = args.recipients
    # As deployed: DEBUG off (no per-query bookkeeping), a secret of its own.
    os.environ.setdefault("DJANGO_DEBUG", "false")
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))

    with Bench("send") as bench:
        from sending import dkim

        dkim_dir = bench.tmp / "dkim"
        dkim_dir.mkdir()
        if not args.no_dkim:
            dkim.generate_rsa_key(dkim_dir, "example.org", "pw1", bits=2048)
        os.environ.update(DKIM_KEY_DIR=str(dkim_dir), SENDING_PROVIDER_RATE_PER_S="0",
                          BOUNCE_DOMAIN="bounce.example.org", SITE_URL="https://news.example.org")
        from sending import conf

        conf.reload()
        port = free_port()
        sink = (c_sink.CSink(port) if args.sink == "c"
                else sink_counter.CountingSink(port, bench.redis.url))
        workers: list[subprocess.Popen] = []
        try:
            from sending.models import Relay
            from sending.services import (
                deliveries_dispatch,
                deliveries_send,
                iter_sql,
                mailing_start,
            )

            news, pool, mailing = setup_data(n)
            Relay.objects.create(pool=pool, name="sink", host="127.0.0.1", port=port,
                                 tls_mode="none", max_rate_per_s=0, max_connections=8)
            sql, params = recipients_sql(news.id)
            started = time.monotonic()
            count = mailing_start(mailing=mailing, recipients=iter_sql(sql, params),
                                  dispatch=False,
                                  canary=False)  # whole-ledger figures; see block_storm --canary
            bench.log(f"ledger: {count} deliveries in {time.monotonic() - started:.1f}s")

            if args.profile:
                ids = list(mailing.deliveries.order_by("id").values_list("id", flat=True))
                ids = ids[:args.profile]
                half = len(ids) // 2
                cpu, started = time.process_time(), time.monotonic()
                for i in range(0, half, 200):
                    deliveries_send(ids[i:min(i + 200, half)])
                cpu, elapsed = time.process_time() - cpu, time.monotonic() - started
                bench.log(f"in-process, one connection, not profiled: {half / elapsed:.0f} "
                          f"msgs/s, {cpu / half * 1e6:.0f} us CPU per message")
                ids = ids[half:]
                profiler = cProfile.Profile()
                started = time.monotonic()
                profiler.enable()
                for i in range(0, len(ids), 200):
                    deliveries_send(ids[i:i + 200])
                profiler.disable()
                elapsed = time.monotonic() - started
                bench.log(f"in-process, one connection: {len(ids) / elapsed:.0f} msgs/s "
                          "(profiled)")
                stats = pstats.Stats(profiler)
                stats.sort_stats("tottime").print_stats(25)
                if os.environ.get("BENCH_CALLERS"):
                    stats.print_callers(os.environ["BENCH_CALLERS"])
                stats.sort_stats("cumulative").print_stats(
                    r"sending|newsletter|deliverability|smtplib|redis/client|models/query", 40)
                bench.report(profiled=len(ids), profiled_msgs_per_s=round(len(ids) / elapsed, 1))
                return

            # Ceiling: 4 connections (processes), plain smtplib, pre-built signed messages.
            from sending.services import _prepare

            prepared = _prepare(mailing.id)
            prebuilt = []
            for i in range(min(n, 2000)):
                rcpt = f"ceiling{i}@example.net"
                data = prepared.composer.compose(
                    {"subscriber": {"name": f"Reader {i}"},
                     "unsubscribe_url": f"https://news.example.org/u/{i}/"},
                    to=rcpt, message_id=f"<ceiling.{i}@example.org>")
                prebuilt.append((rcpt, dkim.sign(data, prepared.keys)))
            messages = [(prebuilt[i % len(prebuilt)][0],
                         prebuilt[i % len(prebuilt)][1].replace(
                             b"Message-ID: <ceiling.", f"Message-ID: <c{i}.".encode(), 1))
                        for i in range(n)]
            chunks = [(port, messages[k::4]) for k in range(4)]
            sink.reset()
            sink_before = cpu_seconds(sink.pid)
            started = time.monotonic()
            with multiprocessing.get_context("fork").Pool(4) as processes:
                processes.map(_ceiling_worker, chunks)
            ceiling_s = sink.wait_for(n, 120) - started
            ceiling = n / ceiling_s
            bench.log(f"ceiling (smtplib, 4 connections): {ceiling:.0f} msgs/s; sink CPU per "
                      f"message {(cpu_seconds(sink.pid) - sink_before) / n * 1e6:.0f} us")
            size = len(messages[0][1])
            del messages, chunks
            sink.reset()
            source_ceiling = None
            if args.sink == "c":
                source_ceiling = c_sink.source_ceiling(port, n, size)
                bench.log(f"sink's own limit (Postfix smtp-source, 4 sessions, {size} bytes): "
                          f"{source_ceiling:.0f} msgs/s")
                sink.reset()

            env = {**bench.env, "LOG_LEVEL": "WARNING"}
            for k in range(args.workers):
                log = open(bench.tmp / f"worker{k}.log", "wb")
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "bulk",
                     "-n", f"bulk{k}@%h", "-P", "threads", "-c", str(args.threads),
                     "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
                    cwd=ROOT, env=env,
                    stdout=log, stderr=subprocess.STDOUT))
            for k in range(args.workers):
                deadline = time.monotonic() + 60
                while b"ready." not in (bench.tmp / f"worker{k}.log").read_bytes():
                    if time.monotonic() > deadline:
                        raise TimeoutError("worker did not start")
                    time.sleep(0.1)
            cpu_before = {w.pid: cpu_seconds(w.pid) for w in workers}
            user_before = {w.pid: cpu_seconds(w.pid, system=False) for w in workers}
            sink_before = cpu_seconds(sink.pid)
            started = time.monotonic()
            batches = deliveries_dispatch(mailing_id=mailing.id)
            finished = sink.wait_for(n, timeout=900)
            real_s = finished - started
            rate = n / real_s
            worker_cpu = sum(cpu_seconds(pid) - cpu for pid, cpu in cpu_before.items())
            worker_user = sum(cpu_seconds(pid, False) - cpu for pid, cpu in user_before.items())
            sink_cpu = cpu_seconds(sink.pid) - sink_before
            bench.log(f"{batches} batches; end to end: {rate:.0f} msgs/s; CPU per message: "
                      f"workers {worker_cpu / n * 1e6:.0f} us ({worker_user / n * 1e6:.0f} user), "
                      f"sink {sink_cpu / n * 1e6:.0f} us; "
                      f"load average {os.getloadavg()[0]:.1f}")
            time.sleep(0.5)
            ids = sink.message_ids()
            duplicates = sum(1 for v in ids.values() if v > 1)
            expected = {d.encode() for d in mailing.deliveries.values_list("message_id",
                                                                            flat=True)}
            missing = n - len(expected & set(ids))
            from sending.models import Delivery

            not_sent = mailing.deliveries.exclude(state=Delivery.State.SENT).count()
            for worker in workers:
                worker.terminate()
            peer_rates = {}
            if args.peers:
                from benchmarks import peers

                key = dkim_dir / "example.org" / "pw1.pem"
                if args.no_dkim:
                    dkim.generate_rsa_key(bench.tmp / "peer-dkim", "example.org", "pw1")
                    key = bench.tmp / "peer-dkim" / "example.org" / "pw1.pem"
                peer_n = min(n, 5000)
                peer_rates = {f"peer_{mode}_msgs_per_s": rate
                              for mode, rate in peers.measure(port, sink, peer_n, key,
                                                              bench.log).items()}
                peer_rates["peer_messages"] = peer_n
                signed = "post_office_dkim" if not args.no_dkim else "post_office"
                peer_rates["vs_post_office_unsigned"] = round(
                    rate / peer_rates["peer_post_office_msgs_per_s"], 2)
                peer_rates["vs_post_office_like_for_like"] = round(
                    rate / peer_rates[f"peer_{signed}_msgs_per_s"], 2)
                peer_rates["vs_django_loop_dkim"] = round(
                    rate / peer_rates["peer_django_loop_dkim_msgs_per_s"], 2)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
            sink.terminate()
            sink.wait(10)
            if args.keep_logs:
                for k in range(len(workers)):
                    print((bench.tmp / f"worker{k}.log").read_text()[-3000:])
        bench.report(recipients=n, workers=args.workers, threads_per_worker=args.threads,
                     dkim="none" if args.no_dkim else "rsa-2048", sink=args.sink,
                     msgs_per_s=round(rate, 1), ceiling_msgs_per_s=round(ceiling, 1),
                     sink_limit_msgs_per_s=(round(source_ceiling, 1) if source_ceiling
                                            else None),
                     ratio=round(rate / ceiling, 3), duplicates=duplicates, missing=missing,
                     worker_cpu_us_per_msg=round(worker_cpu / n * 1e6),
                     sink_cpu_us_per_msg=round(sink_cpu / n * 1e6),
                     not_sent=not_sent, **peer_rates)


if __name__ == "__main__":
    main()
